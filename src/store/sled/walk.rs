//! The index walk of the sled engine: which list positions a `List` (or a
//! count of publish times) visits, read from the published index, or, with
//! facet filters, from the facet indexes by a leapfrog join: each facet is
//! the union of its values' index ranges, and the walk seeks every union to
//! the highest position any of them is at until they all agree, skipping
//! what cannot match. The walk is not a snapshot; its caller re-checks what
//! it finds.

use crate::{
    proto::Timestamp,
    store::{ListPosition, ListQuery, StoreError, position::POSITION_LEN},
};

use super::{
    layout::{self, prefixed},
    record::corrupt,
};

/// Visits the positions of the published releases matching the query's
/// facets, in list order, within the query's publish-time bounds and
/// after `after`: the published index, or the intersection of the facet
/// indexes. `visit` returns false to stop.
pub(super) fn walk(
    db: &sled::Db,
    query: &ListQuery,
    after: Option<&ListPosition>,
    visit: &mut dyn FnMut(ListPosition) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let (lower, upper) = bounds(query, after);
    if query.facets.is_empty() {
        let start = prefixed(layout::PUBLISHED, &lower);
        let end = match upper {
            Some(upper) => prefixed(layout::PUBLISHED, &upper),
            None => vec![layout::PUBLISHED + 1],
        };
        for entry in db.range(start..end) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            if !visit(position_at_end(&key)?)? {
                break;
            }
        }
        return Ok(());
    }
    let mut unions: Vec<FacetUnion> = query
        .facets
        .iter()
        .map(|(facet, values)| FacetUnion::new(facet.tag(), values))
        .collect();
    let mut lower = lower;
    while let Some(position) = next_common(db, &mut unions, &mut lower, upper.as_ref())? {
        lower = position.successor();
        if !visit(position)? {
            break;
        }
    }
    Ok(())
}

/// Leapfrog join: the first position at or after `lower` that every
/// facet union holds.
fn next_common(
    db: &sled::Db,
    unions: &mut [FacetUnion],
    lower: &mut Vec<u8>,
    upper: Option<&[u8; POSITION_LEN]>,
) -> Result<Option<ListPosition>, StoreError> {
    loop {
        let mut highest: Option<ListPosition> = None;
        let mut agreed = true;
        for union in unions.iter_mut() {
            let Some(head) = union.seek(db, lower, upper)? else {
                return Ok(None);
            };
            match highest {
                None => highest = Some(head),
                Some(seen) if seen != head => {
                    agreed = false;
                    highest = Some(seen.max(head));
                }
                Some(_) => {}
            }
        }
        let Some(candidate) = highest else {
            return Ok(None);
        };
        if agreed {
            return Ok(Some(candidate));
        }
        *lower = candidate.0.to_vec();
    }
}

/// The union of the index ranges of one facet's values, read in list order.
struct FacetUnion {
    prefixes: Vec<Vec<u8>>,
    heads: Vec<Head>,
}

#[derive(Clone, Copy)]
enum Head {
    Unread,
    At(ListPosition),
    Exhausted,
}

impl FacetUnion {
    fn new(facet: u8, values: &[String]) -> Self {
        Self {
            prefixes: values
                .iter()
                .map(|value| layout::facet_prefix(facet, value))
                .collect(),
            heads: vec![Head::Unread; values.len()],
        }
    }

    /// Moves every range to its first position at or after `target` and
    /// returns the smallest.
    fn seek(
        &mut self,
        db: &sled::Db,
        target: &[u8],
        upper: Option<&[u8; POSITION_LEN]>,
    ) -> Result<Option<ListPosition>, StoreError> {
        let mut lowest: Option<ListPosition> = None;
        for (prefix, head) in self.prefixes.iter().zip(self.heads.iter_mut()) {
            let behind = match head {
                Head::Exhausted => continue,
                Head::Unread => true,
                Head::At(position) => position.0.as_slice() < target,
            };
            if behind {
                let start = [prefix.as_slice(), target].concat();
                let mut end = prefix.clone();
                match upper {
                    Some(upper) => end.extend_from_slice(upper),
                    None => end.extend_from_slice(&[0xff; POSITION_LEN + 1]),
                }
                *head = match db.range(start..end).next() {
                    Some(entry) => {
                        let (key, _) = entry.map_err(StoreError::engine)?;
                        Head::At(position_at_end(&key)?)
                    }
                    None => Head::Exhausted,
                };
            }
            if let Head::At(position) = head {
                lowest = Some(lowest.map_or(*position, |low| low.min(*position)));
            }
        }
        Ok(lowest)
    }
}

/// Where a walk for `query` starts (resuming after `after`) and ends: list
/// order is newest first, so `published_before` bounds the start and
/// `published_at_or_after` the end.
fn bounds(
    query: &ListQuery,
    after: Option<&ListPosition>,
) -> (Vec<u8>, Option<[u8; POSITION_LEN]>) {
    let mut lower: Vec<u8> = Vec::new();
    if let Some(before) = &query.published_before {
        lower = ListPosition::first_at_or_before(&just_before(before))
            .0
            .to_vec();
    }
    if let Some(after) = after {
        lower = lower.max(after.successor());
    }
    let upper = query
        .published_at_or_after
        .as_ref()
        .map(|at| ListPosition::first_at_or_before(&just_before(at)).0);
    (lower, upper)
}

/// The latest representable time before `time`.
fn just_before(time: &Timestamp) -> Timestamp {
    if time.nanos > 0 {
        Timestamp {
            seconds: time.seconds,
            nanos: time.nanos - 1,
        }
    } else {
        Timestamp {
            seconds: time.seconds.saturating_sub(1),
            nanos: 999_999_999,
        }
    }
}

/// The list position that ends an index key.
fn position_at_end(key: &[u8]) -> Result<ListPosition, StoreError> {
    key.len()
        .checked_sub(POSITION_LEN)
        .and_then(|start| ListPosition::from_slice(&key[start..]))
        .ok_or_else(|| corrupt(key))
}

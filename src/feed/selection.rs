//! Which changes a watch stream delivers, decided per change-log entry.
//!
//! An entry is delivered only if it is the release's latest (earlier ones are
//! compacted away) and the release is visible: published and matching the
//! filter gives CREATED, UPDATED or PUBLISHED; withdrawn, or changed so that
//! it no longer matches, gives WITHDRAWN or UNMATCHED — but only if some
//! version of it that the consumer may hold (one since the stream's start)
//! was published and matched. Embargoed versions never count as visible, so
//! nothing of an embargoed release reaches a watcher before its time.
//!
//! The facet hashes the log keeps let most entries of a narrow filter be
//! passed over without reading the release.

use std::sync::Arc;

use crate::{
    proto::v1::{EventType, PressRelease, press_release::State},
    store::{ChangeKind, ListQuery, LogEntry, StoreError, facet_hash},
};

/// Where a stream reads entries and records: the recent tail, else the
/// store.
pub(super) trait Source {
    /// The entry with this sequence number.
    fn entry(&self, seq: u64) -> Result<Option<LogEntry>, StoreError>;

    /// The release `entry` changed, as it is now, if `entry` is still its
    /// latest change (`None` when a later change will speak for it, or the
    /// release is gone).
    fn current(&self, entry: &LogEntry) -> Result<Option<Arc<PressRelease>>, StoreError>;
}

/// A watch's filter, in the forms needed to test records and log entries.
pub struct Selection {
    query: ListQuery,
    /// Per filtered facet, the hashes of the wanted values.
    wanted: Vec<Vec<u64>>,
}

impl Selection {
    /// The selection of a (validated, normalised) query.
    pub fn new(query: ListQuery) -> Self {
        let wanted = query
            .facets
            .iter()
            .map(|(facet, values)| values.iter().map(|v| facet_hash(*facet, v)).collect())
            .collect();
        Self { query, wanted }
    }

    fn is_everything(&self) -> bool {
        self.query == ListQuery::default()
    }

    /// Whether a version with these (sorted) facet hashes may match.
    fn may_match(&self, hashes: &[u64]) -> bool {
        self.wanted
            .iter()
            .all(|any_of| any_of.iter().any(|h| hashes.binary_search(h).is_ok()))
    }

    /// What, if anything, to deliver for `entry`, to a stream that started
    /// after log position `start`.
    pub(super) fn event_for(
        &self,
        source: &dyn Source,
        start: u64,
        entry: &LogEntry,
    ) -> Result<Option<(EventType, Arc<PressRelease>)>, StoreError> {
        let mut held = None;
        let may_upsert = self.is_everything() || (entry.visible && self.may_match(&entry.facets));
        if !may_upsert {
            // Only a removal could be due; most entries stop here unread.
            if !self.may_be_held(source, start, entry)? {
                return Ok(None);
            }
            held = Some(true);
        }
        // Changed again later in the log: that later entry will speak.
        let Some(release) = source.current(entry)? else {
            return Ok(None);
        };
        let state = release.state();
        if state == State::Published && self.query.matches(&release) {
            let kind = match entry.change_kind() {
                ChangeKind::Created => EventType::Created,
                ChangeKind::Published => EventType::Published,
                _ => EventType::Updated,
            };
            return Ok(Some((kind, release)));
        }
        if !matches!(state, State::Published | State::Withdrawn) {
            return Ok(None);
        }
        let held = match held {
            Some(held) => held,
            None => self.may_be_held(source, start, entry)?,
        };
        Ok(held.then(|| {
            let kind = if state == State::Withdrawn {
                EventType::Withdrawn
            } else {
                EventType::Unmatched
            };
            (kind, release)
        }))
    }

    /// Whether a version of the entry's release that existed after `start`
    /// was published and may have matched, so the consumer may hold it.
    fn may_be_held(
        &self,
        source: &dyn Source,
        start: u64,
        entry: &LogEntry,
    ) -> Result<bool, StoreError> {
        let mut current = entry.clone();
        loop {
            if current.prev_visible && self.may_match(&current.prev_facets) {
                return Ok(true);
            }
            let prev = current.prev_seq;
            if prev == 0 || prev <= start {
                return Ok(false);
            }
            match source.entry(prev)? {
                Some(entry) => current = entry,
                None => return Ok(false),
            }
        }
    }
}

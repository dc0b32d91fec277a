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
//!
//! A text query narrows the selection as search would (see
//! [`QueryGroup`]). The log keeps no trace of a version's words, so whether
//! an earlier version matched is known only while the recent tail holds
//! it; beyond that it is taken to have matched, and a release that does
//! not match now may be announced UNMATCHED to a stream that never had it
//! (a delete of something not held, which a consumer can ignore).

use std::{collections::HashSet, sync::Arc};

use uuid::Uuid;

use super::{Shared, queries::QueryGroup, tail::TailEntry};
use crate::{
    proto::v1::{EventType, Highlight, PressRelease, PressReleaseEvent, press_release::State},
    store::{ChangeKind, EncodedRelease, ListQuery, LogEntry, StoreError, facet_hash},
};

/// Where a stream reads entries and records: the recent tail, else the
/// store.
pub(super) trait Source: Sync {
    /// The entry with this sequence number.
    async fn entry(&self, seq: u64) -> Result<Option<LogEntry>, StoreError>;

    /// The release `entry` changed, as it is now, if `entry` is still its
    /// latest change (`None` when a later change will speak for it, or the
    /// release is gone).
    async fn current(&self, entry: &LogEntry) -> Result<Option<Version>, StoreError>;

    /// The tail's entry with this sequence number, if it still holds it.
    fn recent(&self, seq: u64) -> Option<Arc<TailEntry>>;
}

/// What the search index said about a chunk of history: for the releases
/// asked about whose latest change is at or before `position`, whether
/// that version matches the stream's query (see
/// `SearchIndex::matching_among`).
#[derive(Debug, Default)]
pub(super) struct Indexed {
    position: u64,
    asked: HashSet<Uuid>,
    matching: HashSet<Uuid>,
}

impl Indexed {
    /// The index's answer about the releases `asked`.
    pub(super) fn new(position: u64, asked: &[Uuid], matching: HashSet<Uuid>) -> Self {
        Self {
            position,
            asked: asked.iter().copied().collect(),
            matching,
        }
    }

    /// Whether the version made by `entry` matches, if the index was asked
    /// and knows.
    fn knows(&self, entry: &LogEntry) -> Option<bool> {
        if entry.seq > self.position {
            return None;
        }
        let id = Uuid::from_slice(&entry.release_id).ok()?;
        self.asked
            .contains(&id)
            .then(|| self.matching.contains(&id))
    }
}

/// A version of a release, and the tail's entry of the change that made
/// it, if the tail holds it (with what was worked out for it there).
pub(super) struct Version {
    pub(super) release: Arc<PressRelease>,
    pub(super) recent: Option<Arc<TailEntry>>,
}

impl Version {
    /// The event delivering this version for `entry` (a store's `store_id`),
    /// with `highlights`: a record shared with the tail is copied, one read
    /// for this reader alone is moved.
    pub(super) fn into_event(
        self,
        store_id: Uuid,
        entry: &LogEntry,
        kind: EventType,
        highlights: Vec<Highlight>,
    ) -> PressReleaseEvent {
        PressReleaseEvent {
            cursor: super::cursor::Cursor {
                store_id,
                seq: entry.seq,
            }
            .encode(),
            r#type: kind as i32,
            press_release: Some(
                Arc::try_unwrap(self.release).unwrap_or_else(|shared| PressRelease::clone(&shared)),
            ),
            commit_time: entry.commit_time,
            highlights,
        }
    }
}

/// A watch's filter and text query, in the forms needed to test records
/// and log entries.
pub struct Selection {
    query: ListQuery,
    /// Per filtered facet, the hashes of the wanted values.
    wanted: Vec<Vec<u64>>,
    /// The text query, shared with the streams of equal ones.
    text: Option<Arc<QueryGroup>>,
    /// Whether events carry highlights of the query's words.
    highlight: bool,
}

impl Selection {
    /// The selection of a (validated, normalised) filter and, optionally, a
    /// text query (with highlights or not).
    pub(super) fn new(query: ListQuery, text: Option<Arc<QueryGroup>>, highlight: bool) -> Self {
        let wanted = query
            .facets
            .iter()
            .map(|(facet, values)| values.iter().map(|v| facet_hash(*facet, v)).collect())
            .collect();
        Self {
            query,
            wanted,
            text,
            highlight,
        }
    }

    /// The text query's group, if the selection has one.
    pub(super) fn group(&self) -> Option<&Arc<QueryGroup>> {
        self.text.as_ref()
    }

    /// Whether a (published) version matches the text query: as the tail
    /// matched it for all queries, else as the search index answered for
    /// the chunk being read, else matched here.
    fn text_matches(&self, version: &Version, made_by: Option<(&LogEntry, &Indexed)>) -> bool {
        let Some(group) = &self.text else {
            return true;
        };
        version
            .recent
            .as_ref()
            .and_then(|recent| recent.matched.as_ref())
            .and_then(|matched| group.outcome(matched, version.release.revision))
            .or_else(|| made_by.and_then(|(entry, indexed)| indexed.knows(entry)))
            .unwrap_or_else(|| group.matches(&version.release))
    }

    /// The release ids the search index could answer for, among entries
    /// just read (those that may be delivered), if the selection has a
    /// text query.
    pub(super) fn to_look_up<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a LogEntry>,
    ) -> Option<(&Arc<QueryGroup>, Vec<Uuid>)> {
        let group = self.text.as_ref()?;
        let mut ids: Vec<Uuid> = entries
            .into_iter()
            .filter(|entry| entry.visible && self.may_match(&entry.facets))
            .filter_map(|entry| Uuid::from_slice(&entry.release_id).ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Some((group, ids))
    }

    /// Whether the version made by the change `seq` may have matched the
    /// text query: unknown (so maybe) unless the tail still holds it.
    fn text_may_have_matched<S: Source>(&self, source: &S, seq: u64) -> bool {
        if self.text.is_none() {
            return true;
        }
        let Some(recent) = source.recent(seq) else {
            return true;
        };
        match &recent.release {
            Some(release) if release.revision == recent.entry.revision => self.text_matches(
                &Version {
                    release: Arc::clone(release),
                    recent: Some(Arc::clone(&recent)),
                },
                None,
            ),
            _ => true,
        }
    }

    /// The highlights of the text query's words in a version delivered, if
    /// the stream asked for them.
    pub(super) fn highlights(&self, version: &Version) -> Vec<Highlight> {
        let Some(group) = self.text.as_ref().filter(|_| self.highlight) else {
            return Vec::new();
        };
        match &version.recent {
            Some(recent)
                if recent
                    .release
                    .as_ref()
                    .is_some_and(|r| r.revision == version.release.revision) =>
            {
                recent.highlights(group, &version.release).to_vec()
            }
            _ => group.highlights(&version.release),
        }
    }

    /// Whether [`Selection::encoded_event_for`] can decide for this
    /// selection: it takes everything (no filter, no query), so the state
    /// of a release is all it needs to know of it.
    pub(super) fn takes_everything(&self) -> bool {
        self.is_everything()
    }

    /// [`Selection::event_for`] for a selection that takes everything,
    /// reading the release as its encoded bytes (only state and revision
    /// decoded), to be passed on as they are.
    pub(super) async fn encoded_event_for(
        &self,
        shared: &Shared,
        start: u64,
        entry: &LogEntry,
    ) -> Result<Option<(EventType, EncodedRelease)>, StoreError> {
        debug_assert!(self.is_everything());
        let Some(version) = shared.current_encoded(entry).await? else {
            return Ok(None);
        };
        let kind = match version.state() {
            State::Published => match entry.change_kind() {
                ChangeKind::Created => EventType::Created,
                ChangeKind::Published => EventType::Published,
                _ => EventType::Updated,
            },
            // Everything published matches, so only a withdrawal is a
            // removal, due if the consumer may hold the release.
            State::Withdrawn if self.may_be_held(shared, start, entry).await? => {
                EventType::Withdrawn
            }
            _ => return Ok(None),
        };
        Ok(Some((kind, version)))
    }

    fn is_everything(&self) -> bool {
        self.query == ListQuery::default() && self.text.is_none()
    }

    /// Whether a version with these (sorted) facet hashes may match.
    fn may_match(&self, hashes: &[u64]) -> bool {
        self.wanted
            .iter()
            .all(|any_of| any_of.iter().any(|h| hashes.binary_search(h).is_ok()))
    }

    /// What, if anything, to deliver for `entry`, to a stream that started
    /// after log position `start`; `indexed` is what the search index said
    /// of the chunk the entry was read with.
    pub(super) async fn event_for<S: Source>(
        &self,
        source: &S,
        start: u64,
        entry: &LogEntry,
        indexed: &Indexed,
    ) -> Result<Option<(EventType, Version)>, StoreError> {
        let mut held = None;
        let may_upsert = self.is_everything() || (entry.visible && self.may_match(&entry.facets));
        if !may_upsert {
            // Only a removal could be due; most entries stop here unread.
            if !self.may_be_held(source, start, entry).await? {
                return Ok(None);
            }
            held = Some(true);
        }
        // Changed again later in the log: that later entry will speak.
        let Some(version) = source.current(entry).await? else {
            return Ok(None);
        };
        let state = version.release.state();
        if state == State::Published
            && self.query.matches(&version.release)
            && self.text_matches(&version, Some((entry, indexed)))
        {
            let kind = match entry.change_kind() {
                ChangeKind::Created => EventType::Created,
                ChangeKind::Published => EventType::Published,
                _ => EventType::Updated,
            };
            return Ok(Some((kind, version)));
        }
        if !matches!(state, State::Published | State::Withdrawn) {
            return Ok(None);
        }
        let held = match held {
            Some(held) => held,
            None => self.may_be_held(source, start, entry).await?,
        };
        Ok(held.then(|| {
            let kind = if state == State::Withdrawn {
                EventType::Withdrawn
            } else {
                EventType::Unmatched
            };
            (kind, version)
        }))
    }

    /// Whether a version of the entry's release that existed after `start`
    /// was published and may have matched, so the consumer may hold it.
    async fn may_be_held<S: Source>(
        &self,
        source: &S,
        start: u64,
        entry: &LogEntry,
    ) -> Result<bool, StoreError> {
        let mut current = entry.clone();
        loop {
            if current.prev_visible
                && self.may_match(&current.prev_facets)
                && self.text_may_have_matched(source, current.prev_seq)
            {
                return Ok(true);
            }
            let prev = current.prev_seq;
            if prev == 0 || prev <= start {
                return Ok(false);
            }
            match source.entry(prev).await? {
                Some(entry) => current = entry,
                None => return Ok(false),
            }
        }
    }
}

//! The commit plan of the PostgreSQL engine. The commit transaction first
//! locks the head row, then reads in bulk every row the batch's checks need
//! (releases to compare-and-swap, request ids, sources, and the releases
//! those point at); the plan then decides each change in memory, in order,
//! each seeing the ones before it, exactly as the sled engine's plan does,
//! and turns the outcome into the few multi-row statements the commit
//! writes: one per table.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;
use uuid::Uuid;

use crate::{
    proto::{
        Timestamp,
        v1::{PressRelease, press_release::State},
    },
    store::{
        Applied, Change, ChangeKind, ChangeResult, ListPosition, LogEntry, NewRelease, Rejected,
        Replacement, facet_values, facets, position::time_bytes,
    },
};

/// Separates facet values in the text handed to `string_to_array` (values
/// never hold control characters: validation refuses them).
pub(super) const FACET_SEPARATOR: char = '\u{1f}';

/// What a batch's checks need to read.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    /// Releases to compare-and-swap.
    pub ids: Vec<Uuid>,
    /// Request ids of creates.
    pub request_ids: Vec<String>,
    /// Sources of creates.
    pub sources: Vec<(String, String)>,
}

impl Wanted {
    /// What `changes` need.
    pub(super) fn of(changes: &[Change]) -> Self {
        let mut wanted = Self::default();
        for change in changes {
            match change {
                Change::Create(create) => {
                    if let Some(request_id) = &create.request_id {
                        wanted.request_ids.push(request_id.clone());
                    }
                    if let Some(source) = &create.source {
                        wanted.sources.push(source.clone());
                    }
                }
                Change::Replace(replace) => {
                    wanted.ids.push(replace.id);
                    if let Some(source) = claimed_source(replace) {
                        wanted.sources.push(source);
                    }
                }
            }
        }
        wanted
    }
}

/// The rows read for a batch, as stored before it.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    /// Releases by id, with the sequence number of their last entry.
    pub releases: HashMap<Uuid, (PressRelease, u64)>,
    /// Request id → release id.
    pub requests: HashMap<String, Uuid>,
    /// Source → (release id, fingerprint).
    pub sources: HashMap<(String, String), (Uuid, Vec<u8>)>,
}

impl Loaded {
    /// Releases that request ids and sources point at and that were not
    /// read yet (a duplicate create answers with them).
    pub(super) fn missing_targets(&self) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = self
            .requests
            .values()
            .chain(self.sources.values().map(|(id, _)| id))
            .filter(|id| !self.releases.contains_key(id))
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A release row to insert or update.
pub(super) struct ReleaseRow {
    pub id: Uuid,
    pub record: Vec<u8>,
    pub revision: i64,
    pub last_seq: i64,
    pub list_position: Option<Vec<u8>>,
    pub facets: Option<String>,
    pub embargo_key: Option<Vec<u8>>,
}

/// Everything a commit writes, a list per table.
pub(super) struct Rows {
    pub releases: Vec<ReleaseRow>,
    pub requests: Vec<(String, Uuid)>,
    pub sources: Vec<(String, String, Uuid, Vec<u8>)>,
    /// `(seq, encoded LogEntry)`.
    pub entries: Vec<(i64, Vec<u8>)>,
    /// Published count changes per hour.
    pub hours: Vec<(i64, i64)>,
    /// Change of the published total.
    pub total_delta: i64,
    /// The first and last sequence numbers written.
    pub first_seq: u64,
    pub last_seq: u64,
}

/// One commit being planned.
pub(super) struct Plan {
    loaded: Loaded,
    dirty: Vec<Uuid>,
    dirty_set: HashSet<Uuid>,
    new_requests: Vec<(String, Uuid)>,
    /// Source claims to write, the last one per source.
    new_sources: BTreeMap<(String, String), (Uuid, Vec<u8>)>,
    hours: BTreeMap<i64, i64>,
    total: i64,
    entries: Vec<(i64, Vec<u8>)>,
    head: u64,
    seq: u64,
    commit_time: Timestamp,
}

impl Plan {
    /// Plans a commit over what was `loaded`, after the log's `head`, at
    /// `commit_time`.
    pub(super) fn new(loaded: Loaded, head: u64, commit_time: Timestamp) -> Self {
        Self {
            loaded,
            dirty: Vec::new(),
            dirty_set: HashSet::new(),
            new_requests: Vec::new(),
            new_sources: BTreeMap::new(),
            hours: BTreeMap::new(),
            total: 0,
            entries: Vec::new(),
            head,
            seq: head,
            commit_time,
        }
    }

    /// Decides one change, seeing those planned before it. `Err` is a
    /// corrupt store (an index pointing at no release).
    pub(super) fn apply(&mut self, change: Change) -> Result<ChangeResult, Uuid> {
        match change {
            Change::Create(create) => self.create(create),
            Change::Replace(replace) => self.replace(replace),
        }
    }

    /// The rows to write; `None` when the batch writes nothing.
    pub(super) fn into_rows(self) -> Option<Rows> {
        if self.seq == self.head {
            return None;
        }
        let mut releases = Vec::with_capacity(self.dirty.len());
        for id in &self.dirty {
            let Some((release, last_seq)) = self.loaded.releases.get(id) else {
                continue;
            };
            releases.push(release_row(id, release, *last_seq));
        }
        Some(Rows {
            releases,
            requests: self.new_requests,
            sources: self
                .new_sources
                .into_iter()
                .map(|((provider, item_id), (id, fingerprint))| {
                    (provider, item_id, id, fingerprint)
                })
                .collect(),
            entries: self.entries,
            hours: self
                .hours
                .into_iter()
                .filter(|(_, delta)| *delta != 0)
                .collect(),
            total_delta: self.total,
            first_seq: self.head + 1,
            last_seq: self.seq,
        })
    }

    fn existing(&self, id: &Uuid) -> Result<PressRelease, Uuid> {
        self.loaded
            .releases
            .get(id)
            .map(|(release, _)| release.clone())
            .ok_or(*id)
    }

    fn create(&mut self, create: NewRelease) -> Result<ChangeResult, Uuid> {
        if let Some(request_id) = &create.request_id
            && let Some(id) = self.loaded.requests.get(request_id)
        {
            return Ok(Ok(Applied::Existing(self.existing(id)?)));
        }
        if let Some(source) = &create.source {
            if let Some((id, fingerprint)) = self.loaded.sources.get(source) {
                let existing = self.existing(id)?;
                return Ok(if *fingerprint == create.fingerprint {
                    Ok(Applied::Existing(existing))
                } else {
                    Err(Rejected::SourceTaken(existing))
                });
            }
            self.claim(source.clone(), create.id, create.fingerprint.clone());
        }
        if let Some(request_id) = &create.request_id {
            self.loaded.requests.insert(request_id.clone(), create.id);
            self.new_requests.push((request_id.clone(), create.id));
        }
        let seq = self.write(create.id, None, create.release.clone(), ChangeKind::Created);
        Ok(Ok(Applied::Committed {
            release: create.release,
            seq,
        }))
    }

    fn replace(&mut self, replace: Replacement) -> Result<ChangeResult, Uuid> {
        let Some((current, last_seq)) = self.loaded.releases.get(&replace.id).cloned() else {
            return Ok(Err(Rejected::NotFound));
        };
        if current.revision != replace.expected_revision {
            return Ok(Err(Rejected::Stale(current)));
        }
        // A later version of its source: the claim takes the new
        // fingerprint, unless the source is another release's.
        if let (Some(source), Some(fingerprint)) =
            (claimed_source(&replace), &replace.source_fingerprint)
        {
            if let Some((holder, _)) = self.loaded.sources.get(&source)
                && *holder != replace.id
            {
                return Ok(Err(Rejected::SourceTaken(self.existing(holder)?)));
            }
            self.claim(source, replace.id, fingerprint.clone());
        }
        let seq = self.write(
            replace.id,
            Some((&current, last_seq)),
            replace.release.clone(),
            replace.kind,
        );
        Ok(Ok(Applied::Committed {
            release: replace.release,
            seq,
        }))
    }

    /// Records the new version, its count changes and its log entry.
    fn write(
        &mut self,
        id: Uuid,
        previous: Option<(&PressRelease, u64)>,
        release: PressRelease,
        kind: ChangeKind,
    ) -> u64 {
        let visible = |r: &PressRelease| r.state() == State::Published;
        let hashes = |r: &PressRelease| {
            if visible(r) {
                facets::hashes_of(&facet_values(r))
            } else {
                Vec::new()
            }
        };
        let (prev_seq, prev_visible, prev_facets) = match previous {
            Some((previous, last_seq)) => {
                if visible(previous) {
                    self.count(previous, -1);
                }
                (last_seq, visible(previous), hashes(previous))
            }
            None => (0, false, Vec::new()),
        };
        if visible(&release) {
            self.count(&release, 1);
        }
        self.seq += 1;
        let entry = LogEntry {
            seq: self.seq,
            release_id: id.as_bytes().to_vec(),
            kind: kind as i32,
            revision: release.revision,
            commit_time: Some(self.commit_time),
            prev_seq,
            prev_visible,
            prev_facets,
            visible: visible(&release),
            facets: hashes(&release),
        };
        self.entries.push((self.seq as i64, entry.encode_to_vec()));
        self.loaded.releases.insert(id, (release, self.seq));
        if self.dirty_set.insert(id) {
            self.dirty.push(id);
        }
        self.seq
    }

    /// Gives `source` to release `id`, with the fingerprint of its content.
    fn claim(&mut self, source: (String, String), id: Uuid, fingerprint: Vec<u8>) {
        self.loaded
            .sources
            .insert(source.clone(), (id, fingerprint.clone()));
        self.new_sources.insert(source, (id, fingerprint));
    }

    fn count(&mut self, release: &PressRelease, delta: i64) {
        let hour = release
            .publish_time
            .unwrap_or_default()
            .seconds
            .div_euclid(3600);
        *self.hours.entry(hour).or_default() += delta;
        self.total += delta;
    }
}

/// The row of a release: the record, and its index columns by state.
pub(super) fn release_row(id: &Uuid, release: &PressRelease, last_seq: u64) -> ReleaseRow {
    let (list_position, facets, embargo_key) = match release.state() {
        State::Published => {
            let position = ListPosition::new(&release.publish_time.unwrap_or_default(), id);
            let values: Vec<String> = facet_values(release)
                .into_iter()
                .map(|(facet, value)| facet_term(facet.tag(), &value))
                .collect();
            let sep = FACET_SEPARATOR.to_string();
            (Some(position.0.to_vec()), Some(values.join(&sep)), None)
        }
        State::Embargoed => (
            None,
            None,
            Some(embargo_key(&release.embargo_time.unwrap_or_default(), id)),
        ),
        State::Withdrawn | State::Unspecified => (None, None, None),
    };
    ReleaseRow {
        id: *id,
        record: release.encode_to_vec(),
        revision: release.revision,
        last_seq: last_seq as i64,
        list_position,
        facets,
        embargo_key,
    }
}

/// The source a replacement claims for a later version of it, if any.
fn claimed_source(replace: &Replacement) -> Option<(String, String)> {
    replace.source_fingerprint.as_ref()?;
    replace
        .release
        .source
        .as_ref()
        .filter(|source| !source.provider.is_empty())
        .map(|source| (source.provider.clone(), source.item_id.clone()))
}

/// How a facet value is kept in the `facets` array: `tag:value`.
pub(super) fn facet_term(tag: u8, value: &str) -> String {
    format!("{tag}:{value}")
}

/// The embargo index key: the embargo time's bytes, then the release id.
pub(super) fn embargo_key(time: &Timestamp, id: &Uuid) -> Vec<u8> {
    let mut out = time_bytes(time).to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

//! The commit plan of the sled engine: how a batch of changes becomes one
//! atomic sled batch. Each change is checked (request id, source, revision)
//! against what is stored overlaid with what the batch has planned so far,
//! so no sled transaction is needed; it then writes the record, moves its
//! index entries, keeps the published counts and appends its change-log
//! entry, numbered after the ones before it.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::{
    proto::{
        Timestamp,
        v1::{PressRelease, press_release::State},
    },
    store::{
        Applied, Change, ChangeKind, ChangeResult, Facet, ListPosition, LogEntry, NewRelease,
        Rejected, Replacement, StoreError, facet_values, facets,
    },
};

use super::{
    layout,
    record::{
        SourceClaim, StoredRelease, corrupt, decode_count, open, open_message, seal, seal_message,
        seal_stored, unwrap_record,
    },
};

/// One commit being planned: the writes so far, readable before they are
/// applied, and the last sequence number handed out.
pub(super) struct Plan<'a> {
    db: &'a sled::Db,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The change-log head before this commit.
    head: u64,
    seq: u64,
    commit_time: Timestamp,
}

impl<'a> Plan<'a> {
    /// Plans a commit on `db`, whose change log ends at `head`, made at
    /// `commit_time`.
    pub(super) fn new(db: &'a sled::Db, head: u64, commit_time: Timestamp) -> Self {
        Self {
            db,
            pending: BTreeMap::new(),
            head,
            seq: head,
            commit_time,
        }
    }

    /// Plans one change, seeing the effects of those planned before it.
    pub(super) fn apply(&mut self, change: Change) -> Result<ChangeResult, StoreError> {
        match change {
            Change::Create(create) => self.create(create),
            Change::Replace(replace) => self.replace(replace),
        }
    }

    /// The atomic batch that carries out the plan, with the change-log head
    /// after it; `None` when nothing is to be written.
    pub(super) fn into_batch(mut self) -> Option<(sled::Batch, u64)> {
        if self.pending.is_empty() {
            return None;
        }
        if self.seq > self.head {
            self.put(
                layout::commit_time_key(&self.commit_time, self.head + 1),
                Vec::new(),
            );
        }
        let mut batch = sled::Batch::default();
        for (key, value) in self.pending {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        Some((batch, self.seq))
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(self
                .db
                .get(key)
                .map_err(StoreError::engine)?
                .map(|value| value.to_vec())),
        }
    }

    fn read_stored(&self, id: &Uuid) -> Result<Option<(PressRelease, u64)>, StoreError> {
        let key = layout::release_key(id);
        match self.read(&key)? {
            Some(value) => {
                let stored: StoredRelease = open_message(&key, &value)?;
                let last_seq = stored.last_seq;
                Ok(Some((unwrap_record(&key, stored)?, last_seq)))
            }
            None => Ok(None),
        }
    }

    /// The release an index entry points at, which must exist.
    fn indexed_release(&self, key: &[u8], id_bytes: &[u8]) -> Result<PressRelease, StoreError> {
        let id = Uuid::from_slice(id_bytes).map_err(|_| corrupt(key))?;
        match self.read_stored(&id)? {
            Some((release, _)) => Ok(release),
            None => Err(corrupt(key)),
        }
    }

    fn create(&mut self, create: NewRelease) -> Result<ChangeResult, StoreError> {
        if let Some(request_id) = &create.request_id {
            let key = layout::request_key(request_id);
            if let Some(value) = self.read(&key)? {
                let existing = self.indexed_release(&key, open(&key, &value)?)?;
                return Ok(Ok(Applied::Existing(existing)));
            }
        }
        if let Some((provider, item_id)) = &create.source {
            let key = layout::source_key(provider, item_id);
            if let Some(value) = self.read(&key)? {
                let claim: SourceClaim = open_message(&key, &value)?;
                let existing = self.indexed_release(&key, &claim.release_id)?;
                return Ok(if claim.fingerprint == create.fingerprint {
                    Ok(Applied::Existing(existing))
                } else {
                    Err(Rejected::SourceTaken(existing))
                });
            }
            let claim = SourceClaim {
                release_id: create.id.as_bytes().to_vec(),
                fingerprint: create.fingerprint.clone(),
            };
            self.put(key, seal_message(&claim));
        }
        if let Some(request_id) = &create.request_id {
            self.put(layout::request_key(request_id), seal(create.id.as_bytes()));
        }
        let seq = self.write(&create.id, None, &create.release, ChangeKind::Created)?;
        Ok(Ok(Applied::Committed {
            release: create.release,
            seq,
        }))
    }

    fn replace(&mut self, replace: Replacement) -> Result<ChangeResult, StoreError> {
        let Some((current, last_seq)) = self.read_stored(&replace.id)? else {
            return Ok(Err(Rejected::NotFound));
        };
        if current.revision != replace.expected_revision {
            return Ok(Err(Rejected::Stale(current)));
        }
        if let Some(fingerprint) = replace.source_fingerprint
            && let Some(source) = replace
                .release
                .source
                .as_ref()
                .filter(|s| !s.provider.is_empty())
        {
            let key = layout::source_key(&source.provider, &source.item_id);
            if let Some(value) = self.read(&key)? {
                let claim: SourceClaim = open_message(&key, &value)?;
                if claim.release_id != replace.id.as_bytes() {
                    let holder = self.indexed_release(&key, &claim.release_id)?;
                    return Ok(Err(Rejected::SourceTaken(holder)));
                }
            }
            let claim = SourceClaim {
                release_id: replace.id.as_bytes().to_vec(),
                fingerprint,
            };
            self.put(key, seal_message(&claim));
        }
        let seq = self.write(
            &replace.id,
            Some((&current, last_seq)),
            &replace.release,
            replace.kind,
        )?;
        Ok(Ok(Applied::Committed {
            release: replace.release,
            seq,
        }))
    }

    /// Writes a record, moves its index entries and appends its log entry.
    fn write(
        &mut self,
        id: &Uuid,
        previous: Option<(&PressRelease, u64)>,
        release: &PressRelease,
        kind: ChangeKind,
    ) -> Result<u64, StoreError> {
        let visible = |r: &PressRelease| r.state() == State::Published;
        // Each version's facet values, worked out once for its index keys
        // and its hashes in the log entry.
        let facets_of = |r: &PressRelease| {
            if visible(r) {
                facet_values(r)
            } else {
                Default::default()
            }
        };
        let mut prev_facets = Vec::new();
        if let Some((previous, _)) = previous {
            let values = facets_of(previous);
            for key in index_keys(id, previous, &values) {
                self.pending.insert(key, None);
            }
            if visible(previous) {
                self.count(previous, -1)?;
                prev_facets = facets::hashes_of(&values);
            }
        }
        let values = facets_of(release);
        for key in index_keys(id, release, &values) {
            self.put(key, Vec::new());
        }
        if visible(release) {
            self.count(release, 1)?;
        }
        self.seq += 1;
        self.put(layout::release_key(id), seal_stored(release, self.seq));
        let (prev_seq, prev_visible) = match previous {
            Some((previous, last_seq)) => (last_seq, visible(previous)),
            None => (0, false),
        };
        let entry = LogEntry {
            seq: self.seq,
            release_id: id.as_bytes().to_vec(),
            kind: kind as i32,
            revision: release.revision,
            commit_time: Some(self.commit_time),
            prev_seq,
            prev_visible,
            prev_facets,
            visible: visible(release),
            facets: facets::hashes_of(&values),
        };
        self.put(layout::log_key(self.seq), seal_message(&entry));
        Ok(self.seq)
    }

    /// Adds `delta` to the published counts: the total and the release's
    /// publish hour.
    fn count(&mut self, release: &PressRelease, delta: i64) -> Result<(), StoreError> {
        let hour = release
            .publish_time
            .unwrap_or_default()
            .seconds
            .div_euclid(3600);
        for key in [layout::total_count_key(), layout::hour_count_key(hour)] {
            let current = match self.read(&key)? {
                Some(value) => decode_count(&key, &value)?,
                None => 0,
            };
            let next = current.saturating_add_signed(delta);
            if next == 0 {
                self.pending.insert(key, None);
            } else {
                self.put(key, seal(&next.to_le_bytes()));
            }
        }
        Ok(())
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, Some(value));
    }
}

/// The index entries a record has: the published and facet indexes while
/// published, the embargo index while embargoed, none once withdrawn.
fn index_keys(
    id: &Uuid,
    release: &PressRelease,
    facets: &BTreeSet<(Facet, String)>,
) -> Vec<Vec<u8>> {
    match release.state() {
        State::Published => {
            let position = ListPosition::new(&release.publish_time.unwrap_or_default(), id);
            let mut out = vec![layout::published_key(&position)];
            out.extend(
                facets
                    .iter()
                    .map(|(facet, value)| layout::facet_key(facet.tag(), value, &position)),
            );
            out
        }
        State::Embargoed => {
            vec![layout::embargo_key(
                &release.embargo_time.unwrap_or_default(),
                id,
            )]
        }
        State::Withdrawn | State::Unspecified => Vec::new(),
    }
}

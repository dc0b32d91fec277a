//! The sled engine. Everything lives in one sled tree under the prefixes of
//! [`keys`](super::keys), so that a commit is a single atomic `apply_batch`
//! (sled batches are atomic on one tree, across crashes too) followed by one
//! `flush`. Only the writer task calls [`Store::commit`], so the change-log
//! head needs no lock, and no sled transaction is needed: the commit plans
//! its batch against an in-memory overlay of what the batch has written so
//! far.
//!
//! Sharp edge kept in mind: sled 0.34's `flush_async` can deadlock when
//! called from many tasks, so only the writer flushes, synchronously.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use crate::proto::Timestamp;
use uuid::Uuid;

use super::{
    Applied, Change, ChangeKind, ChangeResult, Facet, ListPosition, ListQuery, LogEntry,
    NewRelease, Rejected, Replacement, Store, StoreError,
    backup::{self, BackupInfo},
    facet_values, facets,
    keys::{self, POSITION_LEN},
    record::{SourceClaim, StoredRelease, open, open_message, seal, seal_message},
};
use crate::proto::v1::{PressRelease, press_release::State};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u32 = 3;

/// A [`Store`] on a sled database in a directory.
pub struct SledStore {
    db: sled::Db,
    store_id: Uuid,
    head: AtomicU64,
    /// Commit times never go backwards, even if the clock does.
    last_commit_time: Mutex<Timestamp>,
    poisoned: AtomicBool,
}

impl SledStore {
    /// Opens (or creates) the database in `path`, with a page cache of
    /// `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = open_waiting_for_lock(&config, LOCK_WAIT).map_err(StoreError::engine)?;
        let store_id = Self::read_or_init_meta(&db)?;
        let (head, last_commit_time) = match db
            .scan_prefix([keys::LOG])
            .next_back()
            .transpose()
            .map_err(StoreError::engine)?
        {
            Some((key, value)) => {
                let entry: LogEntry = open_message(&key, &value)?;
                (entry.seq, entry.commit_time.unwrap_or_default())
            }
            None => (0, Timestamp::default()),
        };
        Ok(Self {
            db,
            store_id,
            head: AtomicU64::new(head),
            last_commit_time: Mutex::new(last_commit_time),
            poisoned: AtomicBool::new(false),
        })
    }

    fn read_or_init_meta(db: &sled::Db) -> Result<Uuid, StoreError> {
        let format_key = keys::meta_key("format");
        let id_key = keys::meta_key("store_id");
        match db.get(&format_key).map_err(StoreError::engine)? {
            Some(value) => {
                let bytes: [u8; 4] = open(&format_key, &value)?
                    .try_into()
                    .map_err(|_| corrupt(&format_key))?;
                let found = u32::from_le_bytes(bytes);
                if found != FORMAT_VERSION {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                let value = db
                    .get(&id_key)
                    .map_err(StoreError::engine)?
                    .ok_or_else(|| corrupt(&id_key))?;
                Uuid::from_slice(open(&id_key, &value)?).map_err(|_| corrupt(&id_key))
            }
            None => {
                if db.iter().next().is_some() {
                    return Err(corrupt(&format_key));
                }
                let store_id = Uuid::new_v4();
                let mut batch = sled::Batch::default();
                batch.insert(id_key, seal(store_id.as_bytes()));
                batch.insert(format_key, seal(&FORMAT_VERSION.to_le_bytes()));
                db.apply_batch(batch).map_err(StoreError::engine)?;
                db.flush().map_err(StoreError::engine)?;
                Ok(store_id)
            }
        }
    }

    fn read_release(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        let key = keys::release_key(id);
        match self.db.get(&key).map_err(StoreError::engine)? {
            Some(value) => unwrap_record(&key, open_message(&key, &value)?).map(Some),
            None => Ok(None),
        }
    }

    /// Visits the positions of the published releases matching the query's
    /// facets, in list order, from `lower` (inclusive) to `upper`
    /// (exclusive): the published index, or the intersection of the facet
    /// indexes. `visit` returns false to stop.
    fn walk(
        &self,
        query: &ListQuery,
        lower: Vec<u8>,
        upper: Option<[u8; POSITION_LEN]>,
        visit: &mut dyn FnMut(ListPosition) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        if query.facets.is_empty() {
            let start = prefixed(keys::PUBLISHED, &lower);
            let end = match upper {
                Some(upper) => prefixed(keys::PUBLISHED, &upper),
                None => vec![keys::PUBLISHED + 1],
            };
            for entry in self.db.range(start..end) {
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
        while let Some(position) = self.next_common(&mut unions, &mut lower, upper.as_ref())? {
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
        &self,
        unions: &mut [FacetUnion],
        lower: &mut Vec<u8>,
        upper: Option<&[u8; POSITION_LEN]>,
    ) -> Result<Option<ListPosition>, StoreError> {
        loop {
            let mut highest: Option<ListPosition> = None;
            let mut agreed = true;
            for union in unions.iter_mut() {
                let Some(head) = union.seek(&self.db, lower, upper)? else {
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
                .map(|value| keys::facet_prefix(facet, value))
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

impl Store for SledStore {
    fn store_id(&self) -> Uuid {
        self.store_id
    }

    fn commit(
        &self,
        changes: Vec<Change>,
        commit_time: Timestamp,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        let mut last_commit_time = self
            .last_commit_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let commit_time = if (commit_time.seconds, commit_time.nanos)
            < (last_commit_time.seconds, last_commit_time.nanos)
        {
            *last_commit_time
        } else {
            commit_time
        };
        let first_seq = self.head.load(Ordering::Acquire) + 1;
        let mut plan = Plan {
            db: &self.db,
            pending: BTreeMap::new(),
            seq: first_seq - 1,
            commit_time,
        };
        let results = changes
            .into_iter()
            .map(|change| match change {
                Change::Create(create) => plan.create(create),
                Change::Replace(replace) => plan.replace(replace),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if plan.pending.is_empty() {
            return Ok(results);
        }
        if plan.seq >= first_seq {
            plan.put(keys::commit_time_key(&commit_time, first_seq), Vec::new());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in plan.pending {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        let durable = self
            .db
            .apply_batch(batch)
            .and_then(|()| {
                self.head.store(plan.seq, Ordering::Release);
                let flushing = std::time::Instant::now();
                let flushed = self.db.flush();
                metrics::histogram!("pressroom_flush_seconds")
                    .record(flushing.elapsed().as_secs_f64());
                flushed
            })
            .map_err(StoreError::engine);
        if let Err(error) = durable {
            // What was applied may or may not be on disk; refuse to build on it.
            self.poisoned.store(true, Ordering::Release);
            return Err(error);
        }
        *last_commit_time = commit_time;
        Ok(results)
    }

    fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        self.read_release(id)
    }

    fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let (lower, upper) = bounds(query, after);
        let mut out = Vec::new();
        self.walk(query, lower, upper, &mut |position| {
            // The index walk is not a snapshot: a commit may have changed the
            // release since its index entry was read. Keep it only if it is
            // still published at this place and still matches.
            if let Some(release) = self.read_release(&position.release_id())? {
                let current = ListPosition::new(
                    &release.publish_time.unwrap_or_default(),
                    &position.release_id(),
                );
                if release.state() == State::Published
                    && current == position
                    && query.matches(&release)
                {
                    out.push((position, release));
                }
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut dyn FnMut(Timestamp),
    ) -> Result<(), StoreError> {
        let (lower, upper) = bounds(query, None);
        self.walk(query, lower, upper, &mut |position| {
            visit(position.publish_time());
            Ok(true)
        })
    }

    fn published_total(&self) -> Result<u64, StoreError> {
        let key = keys::total_count_key();
        match self.db.get(&key).map_err(StoreError::engine)? {
            Some(value) => decode_count(&key, &value),
            None => Ok(0),
        }
    }

    fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let mut out = Vec::new();
        if from_hour >= to_hour {
            return Ok(out);
        }
        for entry in self
            .db
            .range(keys::hour_count_key(from_hour)..keys::hour_count_key(to_hour))
        {
            let (key, value) = entry.map_err(StoreError::engine)?;
            let hour = keys::hour_from_count_key(&key).ok_or_else(|| corrupt(&key))?;
            out.push((hour, decode_count(&key, &value)?));
        }
        Ok(out)
    }

    fn log_head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn read_log(&self, after: u64, up_to: u64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let range = keys::log_key(after.saturating_add(1))..=keys::log_key(up_to);
        self.db
            .range(range)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(StoreError::engine)?;
                open_message(&key, &value)
            })
            .collect()
    }

    fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        let start = keys::commit_time_prefix(time);
        match self.db.range(start..vec![keys::COMMIT_TIME + 1]).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(StoreError::engine)?;
                let seq = keys::seq_from_commit_time_key(&key).ok_or_else(|| corrupt(&key))?;
                Ok(seq.saturating_sub(1))
            }
            None => Ok(self.log_head()),
        }
    }

    fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        match self.db.scan_prefix([keys::EMBARGO]).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(StoreError::engine)?;
                keys::parse_embargo_key(&key)
                    .map(Some)
                    .ok_or_else(|| corrupt(&key))
            }
            None => Ok(None),
        }
    }

    fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([keys::EMBARGO]).take(limit) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (time, id) = keys::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if (time.seconds, time.nanos) > (now.seconds, now.nanos) {
                break;
            }
            out.push(id);
        }
        Ok(out)
    }

    fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([keys::EMBARGO]) {
            let (key, _) = entry.map_err(StoreError::engine)?;
            let (_, id) = keys::parse_embargo_key(&key).ok_or_else(|| corrupt(&key))?;
            if let Some(release) = self.read_release(&id)? {
                out.push(release);
            }
        }
        Ok(out)
    }

    fn embargoes_pending(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.db.scan_prefix([keys::EMBARGO]) {
            entry.map_err(StoreError::engine)?;
            count += 1;
        }
        Ok(count)
    }

    fn backup(&self, out: &mut dyn std::io::Write) -> Result<BackupInfo, StoreError> {
        backup::write(
            &self.db,
            self.store_id,
            FORMAT_VERSION,
            self.log_head(),
            out,
        )
        .map_err(StoreError::engine)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(StoreError::engine)
    }
}

impl SledStore {
    /// Restores a backup into `data_dir` (its `store` folder must not hold
    /// a store yet).
    pub fn restore(
        input: &mut dyn std::io::Read,
        data_dir: &Path,
    ) -> Result<BackupInfo, backup::RestoreError> {
        backup::restore(input, data_dir, FORMAT_VERSION)
    }
}

/// One commit being planned: the writes so far, readable before they are
/// applied, and the last sequence number handed out.
struct Plan<'a> {
    db: &'a sled::Db,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    seq: u64,
    commit_time: Timestamp,
}

impl Plan<'_> {
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
        let key = keys::release_key(id);
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
            let key = keys::request_key(request_id);
            if let Some(value) = self.read(&key)? {
                let existing = self.indexed_release(&key, open(&key, &value)?)?;
                return Ok(Ok(Applied::Existing(existing)));
            }
        }
        if let Some((provider, item_id)) = &create.source {
            let key = keys::source_key(provider, item_id);
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
            self.put(keys::request_key(request_id), seal(create.id.as_bytes()));
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
        self.put(
            keys::release_key(id),
            seal(&encode_stored(release, self.seq)),
        );
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
        self.put(keys::log_key(self.seq), seal_message(&entry));
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
        for key in [keys::total_count_key(), keys::hour_count_key(hour)] {
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
            let mut out = vec![keys::published_key(&position)];
            out.extend(
                facets
                    .iter()
                    .map(|(facet, value)| keys::facet_key(facet.tag(), value, &position)),
            );
            out
        }
        State::Embargoed => {
            vec![keys::embargo_key(
                &release.embargo_time.unwrap_or_default(),
                id,
            )]
        }
        State::Withdrawn | State::Unspecified => Vec::new(),
    }
}

/// How long opening waits for another holder of the data dir's lock to let
/// go of it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the database, waiting up to `wait` while its directory lock is
/// held. sled 0.34 lets go of the lock from a background thread some moments
/// after the last handle is dropped (spacejam/sled#1289), so a database this
/// process has just closed (a restart in place, a restore then serve) can be
/// briefly locked; another process holding it for longer still gets the
/// error.
fn open_waiting_for_lock(
    config: &sled::Config,
    wait: std::time::Duration,
) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match config.open() {
            Err(sled::Error::Io(error))
                if is_lock_contention(&error) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            opened => return opened,
        }
    }
}

/// Whether opening failed because the directory lock is held. sled 0.34
/// reports it as an `Other` I/O error whose text names the lock (its
/// `Config::open`), the underlying `WouldBlock` only in that text.
fn is_lock_contention(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
        && error.to_string().starts_with("could not acquire lock")
}

/// A `StoredRelease` encoded from a borrowed record (no copy of it first).
fn encode_stored(release: &PressRelease, last_seq: u64) -> Vec<u8> {
    use prost::Message as _;
    let mut out = Vec::with_capacity(release.encoded_len() + 16);
    prost::encoding::message::encode(1, release, &mut out);
    prost::encoding::uint64::encode(2, &last_seq, &mut out);
    out
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

fn decode_count(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = open(key, value)?.try_into().map_err(|_| corrupt(key))?;
    Ok(u64::from_le_bytes(bytes))
}

/// The release inside a stored record, which must be there.
fn unwrap_record(key: &[u8], stored: StoredRelease) -> Result<PressRelease, StoreError> {
    stored.release.ok_or_else(|| corrupt(key))
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

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    [&[prefix][..], rest].concat()
}

/// The list position that ends an index key.
fn position_at_end(key: &[u8]) -> Result<ListPosition, StoreError> {
    key.len()
        .checked_sub(POSITION_LEN)
        .and_then(|start| ListPosition::from_slice(&key[start..]))
        .ok_or_else(|| corrupt(key))
}

fn corrupt(key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        key: key.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn passes_the_conformance_suite() {
        conformance::run(&|dir: &Path| {
            SledStore::open(dir, 16 << 20)
                .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn Store>)
        });
    }

    #[test]
    fn a_flipped_byte_in_a_record_is_reported_not_returned()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let id = Uuid::now_v7();
        {
            let store = SledStore::open(dir.path(), 16 << 20)?;
            store.commit(
                vec![conformance::create(id, "Flip me", &["Tech"])],
                Timestamp::default(),
            )?;
            let key = keys::release_key(&id);
            let mut value = store.db.get(&key)?.map(|v| v.to_vec()).unwrap_or_default();
            let last = value.len() - 1;
            value[last] ^= 0x01;
            store.db.insert(&key, value)?;
            store.db.flush()?;
        }
        let store = SledStore::open(dir.path(), 16 << 20)?;
        assert!(matches!(store.get(&id), Err(StoreError::Corrupt { .. })));
        Ok(())
    }

    #[test]
    fn opening_waits_while_the_lock_is_let_go() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().to_path_buf();
        // Another handle holds the directory's lock, and lets go of it a
        // moment later.
        let held = sled::open(&path)?;
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let store = SledStore::open(&path, 16 << 20);
        releaser
            .join()
            .map_err(|_| "the releasing thread panicked")?;
        assert!(
            store.is_ok(),
            "opened once the lock was free: {:?}",
            store.err()
        );
        Ok(())
    }

    #[test]
    fn a_lock_held_for_good_is_an_error_after_the_wait() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let _held = sled::open(dir.path())?;
        let config = sled::Config::new().path(dir.path());
        let started = std::time::Instant::now();
        let opened = open_waiting_for_lock(&config, std::time::Duration::from_millis(200));
        assert!(
            matches!(&opened, Err(sled::Error::Io(e)) if is_lock_contention(e)),
            "the lock error, once the wait is over: {:?}",
            opened.err()
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(200));
        Ok(())
    }

    #[test]
    fn refuses_a_data_dir_of_another_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let store = SledStore::open(dir.path(), 16 << 20)?;
            store
                .db
                .insert(keys::meta_key("format"), seal(&99u32.to_le_bytes()))?;
            store.db.flush()?;
        }
        assert!(matches!(
            SledStore::open(dir.path(), 16 << 20),
            Err(StoreError::UnsupportedFormat { found: 99, .. })
        ));
        Ok(())
    }
}

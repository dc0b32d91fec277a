//! The conformance suite every [`Store`] engine must pass: atomic commits,
//! a gapless change log, idempotency and uniqueness checks inside the
//! commit, compare-and-swap, index maintenance, list order and bounds,
//! persistence across reopening, and subscription definitions and state
//! (positions that only move forward unless sought, event states forgotten
//! once passed, dead letters, changes for unknown subscriptions skipped).
//! An engine's tests call [`run`] and [`run_subscriptions`] with a
//! function that opens the engine in a directory. The checks are plain
//! sequential code: they reach the async [`Store`] through [`Engine`],
//! which waits for each operation on a runtime of the test's. Split by
//! job: `releases` (records, request ids, sources, compare-and-swap,
//! reopening, backups), `indexes` (lists, facets, embargoes, counts),
//! `log` (the change log) and `subscriptions`.

mod indexes;
mod log;
mod releases;
mod subscriptions;

use std::{path::Path, sync::Arc};

use crate::proto::Timestamp;
use uuid::Uuid;

use self::{indexes::*, log::*, releases::*, subscriptions::*};
use super::{
    Applied, Change, ChangeKind, Facet, ListQuery, NewRelease, Rejected, Replacement, Store,
    StoreError, facet_hash,
};
use crate::proto::v1::{PressRelease, press_release::State};

/// Opens an engine on a directory (reopening what is there).
pub(crate) type Open<'a> = &'a dyn Fn(&Path) -> Result<Engine, StoreError>;

/// A [`Store`] whose operations the checks wait for, one at a time.
pub(crate) struct Engine {
    store: Arc<dyn Store>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Engine {
    /// `store`, driven on `runtime`.
    pub(crate) fn new(store: Arc<dyn Store>, runtime: Arc<tokio::runtime::Runtime>) -> Self {
        Self { store, runtime }
    }

    /// A current-thread runtime, enough for an engine that needs nothing
    /// but the blocking pool (sled).
    pub(crate) fn runtime() -> Arc<tokio::runtime::Runtime> {
        Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}")),
        )
    }

    fn store_id(&self) -> Uuid {
        self.store.store_id()
    }
    fn commit(
        &self,
        changes: Vec<Change>,
        time: Timestamp,
    ) -> Result<Vec<super::ChangeResult>, StoreError> {
        self.runtime
            .block_on(self.store.commit(changes, Some(time)))
    }
    fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        self.runtime.block_on(self.store.get(id))
    }
    fn create_subscription(
        &self,
        record: &super::SubscriptionRecord,
        position: u64,
    ) -> Result<bool, StoreError> {
        self.runtime
            .block_on(self.store.create_subscription(record, position))
    }
    fn subscription(&self, id: &str) -> Result<Option<super::SubscriptionRecord>, StoreError> {
        self.runtime.block_on(self.store.subscription(id))
    }
    fn subscriptions(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<super::SubscriptionRecord>, StoreError> {
        self.runtime
            .block_on(self.store.subscriptions(after, limit))
    }
    fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        self.runtime.block_on(self.store.delete_subscription(id))
    }
    fn subscription_state(&self, id: &str) -> Result<Option<super::SubscriptionState>, StoreError> {
        self.runtime.block_on(self.store.subscription_state(id))
    }
    fn commit_subscriptions(
        &self,
        changes: Vec<super::SubscriptionChange>,
    ) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.commit_subscriptions(changes))
    }
    fn list(
        &self,
        query: &ListQuery,
        after: Option<&super::ListPosition>,
        limit: usize,
    ) -> Result<Vec<(super::ListPosition, PressRelease)>, StoreError> {
        self.runtime.block_on(self.store.list(query, after, limit))
    }
    fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.published_times(query, visit))
    }
    fn published_total(&self) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.published_total())
    }
    fn published_per_hour(&self, from: i64, to: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.runtime
            .block_on(self.store.published_per_hour(from, to))
    }
    fn log_head(&self) -> u64 {
        self.store.log_head()
    }
    fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<super::LogEntry>, StoreError> {
        let entries = self
            .runtime
            .block_on(self.store.read_log(after, up_to, limit))?;
        // Reading with records yields the same entries, each with its
        // release as it is now.
        let changes = self
            .runtime
            .block_on(self.store.read_changes(after, up_to, limit, true))?;
        assert_eq!(
            changes.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
            entries,
            "read_changes reads what read_log does"
        );
        for (entry, release) in changes {
            let id = Uuid::from_slice(&entry.release_id).unwrap_or_else(|e| panic!("id: {e}"));
            assert_eq!(
                release,
                self.get(&id)?,
                "read_changes's record is the current one"
            );
        }
        Ok(entries)
    }
    fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        self.runtime.block_on(self.store.log_position_at(time))
    }
    fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        self.runtime.block_on(self.store.next_embargo())
    }
    fn embargoes_due(&self, now: &Timestamp, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        self.runtime.block_on(self.store.embargoes_due(now, limit))
    }
    fn backup_file(&self) -> Result<super::BackupFile, StoreError> {
        self.runtime.block_on(self.store.backup_file())
    }
}

/// One check of the suite.
type Check = fn(Open<'_>, &Path);

/// Runs every check against fresh engines opened by `open`.
pub(crate) fn run(open: Open<'_>) {
    let checks: &[(&str, Check)] = &[
        ("empty store", empty_store),
        ("create, get and the log", create_get_and_log),
        ("request ids", request_ids),
        ("source uniqueness", source_uniqueness),
        ("a later version of a source", a_later_version_of_a_source),
        ("compare and swap", compare_and_swap),
        (
            "list order, filters and bounds",
            list_order_filters_and_bounds,
        ),
        ("indexes follow changes", indexes_follow_changes),
        ("reopening", reopening),
        ("change-log links and visibility", log_links),
        ("commit-time positions", commit_time_positions),
        ("embargo index", embargo_index),
        ("published counts", published_counts),
        ("backups", backups),
    ];
    run_checks(open, checks);
}

/// The checks of subscription definitions and state (issue 18); every
/// engine runs them beside [`run`].
pub(crate) fn run_subscriptions(open: Open<'_>) {
    run_checks(
        open,
        &[
            ("subscriptions", subscriptions),
            ("subscription state", subscription_state),
        ],
    );
}

fn run_checks(open: Open<'_>, checks: &[(&str, Check)]) {
    for (name, check) in checks {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for {name}: {e}"));
        eprintln!("conformance: {name}");
        check(open, dir.path());
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn ok<T>(result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("store error: {e}"))
}

/// A published release with the given headline and channels, published at
/// `id`'s creation order (use [`create_at`] to choose the time).
pub(crate) fn create(id: Uuid, headline: &str, channels: &[&str]) -> Change {
    create_at(id, headline, channels, 1_700_000_000)
}

fn release(id: Uuid, headline: &str, channels: &[&str], publish: i64) -> PressRelease {
    PressRelease {
        name: format!("pressReleases/{id}"),
        headline: headline.into(),
        body: "Body.".into(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        publish_time: Some(at(publish)),
        state: State::Published as i32,
        revision: 1,
        ..Default::default()
    }
}

fn create_at(id: Uuid, headline: &str, channels: &[&str], publish: i64) -> Change {
    Change::Create(NewRelease {
        id,
        release: release(id, headline, channels, publish),
        request_id: None,
        source: None,
        fingerprint: headline.as_bytes().to_vec(),
    })
}

fn commit(store: &Engine, changes: Vec<Change>) -> Vec<super::ChangeResult> {
    ok(store.commit(changes, at(1_800_000_000)))
}

fn committed_seq(result: &super::ChangeResult) -> u64 {
    match result {
        Ok(Applied::Committed { seq, .. }) => *seq,
        other => panic!("expected a commit, got {other:?}"),
    }
}

fn names(listed: &[(super::ListPosition, PressRelease)]) -> Vec<String> {
    listed.iter().map(|(_, r)| r.headline.clone()).collect()
}

fn replace(id: Uuid, expected: i64, mut next: PressRelease, kind: ChangeKind) -> Change {
    next.revision = expected + 1;
    Change::Replace(Replacement {
        id,
        expected_revision: expected,
        release: next,
        kind,
        source_fingerprint: None,
    })
}

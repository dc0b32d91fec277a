//! The conformance suite every [`Store`] engine must pass: atomic commits,
//! a gapless change log, idempotency and uniqueness checks inside the
//! commit, compare-and-swap, index maintenance, list order and bounds,
//! persistence across reopening, and subscription definitions and state
//! (positions that only move forward unless sought, event states forgotten
//! once passed, dead letters, changes for unknown subscriptions skipped).
//! An engine's tests call [`run`] (and [`run_subscriptions`], once it keeps
//! subscriptions) with a function that opens the engine in a directory. The checks are plain sequential code: they reach the async
//! [`Store`] through [`Engine`], which waits for each operation on a
//! runtime of the test's.

use std::{path::Path, sync::Arc};

use crate::proto::Timestamp;
use uuid::Uuid;

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

/// The checks of subscription state (issue 18), for an engine that keeps
/// subscriptions: sled does; the PostgreSQL engine answers
/// `StoreError::Unsupported` until it implements them, and then calls this
/// beside [`run`].
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

/// A backup is the store at the log head: two with no commit between are
/// the same.
fn backups(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    commit(&store, ids.iter().map(|id| create(*id, "b", &[])).collect());
    let read = |mut file: super::BackupFile| {
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut read).unwrap_or_else(|e| panic!("read: {e}"));
        (file.info(), read)
    };
    let (info, first) = read(ok(store.backup_file()));
    assert!(!first.is_empty());
    assert_eq!(
        read(ok(store.backup_file())),
        (info, first),
        "the same backup"
    );
    assert_eq!((info.store_id, info.position), (store.store_id(), 3));
}

fn empty_store(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(store.log_head(), 0);
    assert_eq!(ok(store.get(&Uuid::now_v7())), None);
    assert!(ok(store.list(&ListQuery::default(), None, 10)).is_empty());
    assert!(ok(store.read_log(0, 10, 10)).is_empty());
}

fn create_get_and_log(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let first = commit(
        &store,
        vec![create(ids[0], "a", &[]), create(ids[1], "b", &[])],
    );
    let second = commit(
        &store,
        ids[2..].iter().map(|id| create(*id, "c", &[])).collect(),
    );
    let seqs: Vec<u64> = first.iter().chain(&second).map(committed_seq).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "sequence numbers are gapless across commits"
    );
    assert_eq!(store.log_head(), 5);
    assert_eq!(ok(store.get(&ids[0])).map(|r| r.headline), Some("a".into()));

    let log = ok(store.read_log(0, 5, 100));
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(log[1].release_id, ids[1].as_bytes().to_vec());
    assert_eq!(log[1].kind, ChangeKind::Created as i32);
    assert_eq!(log[1].revision, 1);
    assert_eq!(log[1].commit_time, Some(at(1_800_000_000)));
    assert_eq!(ok(store.read_log(2, 4, 100)).len(), 2, "bounded by up_to");
    assert_eq!(ok(store.read_log(0, 5, 3)).len(), 3, "bounded by limit");
}

fn request_ids(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let with_request = |id: Uuid, headline: &str| {
        let Change::Create(mut create) = create(id, headline, &[]) else {
            unreachable!()
        };
        create.request_id = Some("req-1".into());
        Change::Create(create)
    };
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // The same request id twice in one commit: the second sees the first.
    let results = commit(
        &store,
        vec![with_request(a, "first"), with_request(b, "second")],
    );
    assert_eq!(committed_seq(&results[0]), 1);
    match &results[1] {
        Ok(Applied::Existing(existing)) => assert_eq!(existing.headline, "first"),
        other => panic!("expected the first release, got {other:?}"),
    }
    // And in a later commit.
    let results = commit(&store, vec![with_request(c, "third")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "first"));
    assert_eq!(store.log_head(), 1, "a repeated request writes nothing");
    assert_eq!(ok(store.get(&b)), None);
}

fn source_uniqueness(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let sourced = |id: Uuid, fingerprint: &str| {
        let Change::Create(mut create) = create(id, "sourced", &[]) else {
            unreachable!()
        };
        create.source = Some(("wire".into(), "item-1".into()));
        create.fingerprint = fingerprint.as_bytes().to_vec();
        Change::Create(create)
    };
    let first = Uuid::now_v7();
    commit(&store, vec![sourced(first, "same")]);
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "same")]);
    assert!(
        matches!(&results[0], Ok(Applied::Existing(r)) if r.name.ends_with(&first.to_string()))
    );
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "other")]);
    assert!(
        matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.name.ends_with(&first.to_string()))
    );
    assert_eq!(store.log_head(), 1);
}

fn a_later_version_of_a_source(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let sourced = |id: Uuid, item_id: &str, fingerprint: &str| {
        let Change::Create(mut create) = create(id, "v1", &[]) else {
            unreachable!()
        };
        create.source = Some(("wire".into(), item_id.into()));
        create.fingerprint = fingerprint.as_bytes().to_vec();
        Change::Create(create)
    };
    let id = Uuid::now_v7();
    commit(&store, vec![sourced(id, "item-1", "v1")]);
    let later = |expected: i64, headline: &str, item_id: &str| {
        let mut next = release(id, headline, &[], 1_700_000_000);
        next.revision = expected + 1;
        next.source = Some(crate::proto::v1::Source {
            provider: "wire".into(),
            item_id: item_id.into(),
            version: 2,
            ..Default::default()
        });
        Change::Replace(Replacement {
            id,
            expected_revision: expected,
            release: next,
            kind: ChangeKind::Updated,
            source_fingerprint: Some(b"v2".to_vec()),
        })
    };
    // Compare-and-swap as for any replacement: the stale one changes nothing.
    let results = commit(
        &store,
        vec![later(1, "v2", "item-1"), later(1, "v2-lost", "item-1")],
    );
    assert_eq!(committed_seq(&results[0]), 2);
    assert!(matches!(&results[1], Err(Rejected::Stale(r)) if r.headline == "v2"));
    // The claim now holds the new fingerprint: v2 again is the existing
    // release, v1 again (its old fingerprint) is other content.
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v2")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "v2"));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v1")]);
    assert!(matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.headline == "v2"));
    assert_eq!(store.log_head(), 2);
    // A replacement cannot take the claim of another release's source.
    let other = Uuid::now_v7();
    commit(&store, vec![sourced(other, "item-2", "x")]);
    let results = commit(&store, vec![later(2, "stolen", "item-2")]);
    assert!(
        matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.name.ends_with(&other.to_string()))
    );
    assert_eq!(store.log_head(), 3, "a refused replacement writes nothing");
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("v2".into()));
    // It survives reopening like every other write.
    drop(store);
    let store = ok(open(dir));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v2")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "v2"));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-2", "x")]);
    assert!(
        matches!(&results[0], Ok(Applied::Existing(r)) if r.name.ends_with(&other.to_string()))
    );
}

fn compare_and_swap(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let id = Uuid::now_v7();
    commit(&store, vec![create(id, "v1", &[])]);
    let replace = |expected: i64, headline: &str| {
        let mut next = release(id, headline, &[], 1_700_000_000);
        next.revision = expected + 1;
        Change::Replace(Replacement {
            id,
            expected_revision: expected,
            release: next,
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })
    };
    // Two replaces expecting the same revision in one commit: only the first wins.
    let results = commit(&store, vec![replace(1, "v2"), replace(1, "v2-lost")]);
    assert_eq!(committed_seq(&results[0]), 2);
    assert!(matches!(&results[1], Err(Rejected::Stale(r)) if r.headline == "v2"));
    let results = commit(&store, vec![replace(1, "stale")]);
    assert!(matches!(&results[0], Err(Rejected::Stale(r)) if r.revision == 2));
    let results = commit(
        &store,
        vec![Change::Replace(Replacement {
            id: Uuid::now_v7(),
            expected_revision: 1,
            release: PressRelease::default(),
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })],
    );
    assert_eq!(results[0], Err(Rejected::NotFound));
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("v2".into()));
    let log = ok(store.read_log(0, 10, 10));
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].kind, ChangeKind::Updated as i32);
    assert_eq!(log[1].revision, 2);
}

fn list_order_filters_and_bounds(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let make = |headline: &str, channels: &[&str], country: &str, publish: i64| {
        let id = Uuid::now_v7();
        let Change::Create(mut create) = create_at(id, headline, channels, publish) else {
            unreachable!()
        };
        create.release.dateline = Some(crate::proto::v1::Dateline {
            country_code: country.into(),
            ..Default::default()
        });
        Change::Create(create)
    };
    commit(
        &store,
        vec![
            make("oldest", &["tech"], "US", 100),
            make("middle", &["business", "tech"], "GB", 200),
            make("newest", &["business"], "US", 300),
            make("tie-a", &["sport"], "US", 250),
            make("tie-b", &["sport"], "US", 250),
        ],
    );
    let all = ok(store.list(&ListQuery::default(), None, 10));
    assert_eq!(
        names(&all)[..2],
        ["newest".to_string(), "tie-a".to_string()]
    );
    assert_eq!(
        names(&all)[3..],
        ["middle".to_string(), "oldest".to_string()]
    );

    let query = |facets: Vec<(Facet, Vec<&str>)>| ListQuery {
        facets: facets
            .into_iter()
            .map(|(f, v)| (f, v.into_iter().map(String::from).collect()))
            .collect(),
        ..Default::default()
    };
    let tech_or_business = query(vec![(Facet::Channel, vec!["tech", "business"])]);
    assert_eq!(
        names(&ok(store.list(&tech_or_business, None, 10))),
        ["newest", "middle", "oldest"]
    );
    let and = query(vec![
        (Facet::Channel, vec!["tech", "business"]),
        (Facet::Country, vec!["us"]),
    ]);
    assert_eq!(names(&ok(store.list(&and, None, 10))), ["newest", "oldest"]);
    let none = query(vec![(Facet::Channel, vec!["nothing"])]);
    assert!(ok(store.list(&none, None, 10)).is_empty());

    // Paging by position, with and without facets.
    let page = ok(store.list(&tech_or_business, None, 2));
    assert_eq!(names(&page), ["newest", "middle"]);
    let rest = ok(store.list(&tech_or_business, Some(&page[1].0), 2));
    assert_eq!(names(&rest), ["oldest"]);
    let page = ok(store.list(&ListQuery::default(), Some(&all[1].0), 2));
    assert_eq!(names(&page), names(&all[2..4]));

    // Time bounds: at or after 200, before 300.
    let bounded = ListQuery {
        published_at_or_after: Some(at(200)),
        published_before: Some(at(300)),
        ..Default::default()
    };
    let listed = names(&ok(store.list(&bounded, None, 10)));
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.last().map(String::as_str), Some("middle"));
    let bounded_tech = ListQuery {
        published_at_or_after: Some(at(150)),
        ..query(vec![(Facet::Channel, vec!["tech"])])
    };
    assert_eq!(names(&ok(store.list(&bounded_tech, None, 10))), ["middle"]);
}

fn indexes_follow_changes(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let id = Uuid::now_v7();
    let embargoed_id = Uuid::now_v7();
    let Change::Create(mut embargoed) = create(embargoed_id, "embargoed", &["tech"]) else {
        unreachable!()
    };
    embargoed.release.state = State::Embargoed as i32;
    embargoed.release.embargo_time = Some(at(4_000_000_000));
    commit(
        &store,
        vec![create(id, "moving", &["tech"]), Change::Create(embargoed)],
    );
    let tech = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        ..Default::default()
    };
    assert_eq!(
        names(&ok(store.list(&tech, None, 10))),
        ["moving"],
        "embargoed is not listed"
    );

    let mut moved = release(id, "moving", &["sport"], 1_700_000_500);
    moved.revision = 2;
    commit(
        &store,
        vec![Change::Replace(Replacement {
            id,
            expected_revision: 1,
            release: moved,
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })],
    );
    assert!(
        ok(store.list(&tech, None, 10)).is_empty(),
        "old facet entry removed"
    );
    let sport = ListQuery {
        facets: vec![(Facet::Channel, vec!["sport".into()])],
        ..Default::default()
    };
    let listed = ok(store.list(&sport, None, 10));
    assert_eq!(names(&listed), ["moving"]);
    assert_eq!(listed[0].1.publish_time, Some(at(1_700_000_500)));

    let tombstone = PressRelease {
        name: format!("pressReleases/{id}"),
        state: State::Withdrawn as i32,
        revision: 3,
        ..Default::default()
    };
    commit(
        &store,
        vec![Change::Replace(Replacement {
            id,
            expected_revision: 2,
            release: tombstone.clone(),
            kind: ChangeKind::Withdrawn,
            source_fingerprint: None,
        })],
    );
    assert!(ok(store.list(&ListQuery::default(), None, 10)).is_empty());
    assert!(ok(store.list(&sport, None, 10)).is_empty());
    assert_eq!(
        ok(store.get(&id)),
        Some(tombstone),
        "only the tombstone is left"
    );
}

fn reopening(open: Open<'_>, dir: &Path) {
    let id = Uuid::now_v7();
    let store_id = {
        let store = ok(open(dir));
        commit(
            &store,
            vec![
                create(id, "kept", &["tech"]),
                create(Uuid::now_v7(), "x", &[]),
            ],
        );
        store.store_id()
    };
    let store = ok(open(dir));
    assert_eq!(store.store_id(), store_id);
    assert_eq!(store.log_head(), 2);
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("kept".into()));
    let results = commit(&store, vec![create(Uuid::now_v7(), "after", &[])]);
    assert_eq!(
        committed_seq(&results[0]),
        3,
        "the log continues without a gap"
    );
    let tech = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        ..Default::default()
    };
    assert_eq!(names(&ok(store.list(&tech, None, 10))), ["kept"]);
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

fn log_links(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let (id, other) = (Uuid::now_v7(), Uuid::now_v7());
    let Change::Create(mut embargoed) = create(id, "x", &["tech"]) else {
        unreachable!()
    };
    embargoed.release.state = State::Embargoed as i32;
    commit(
        &store,
        vec![Change::Create(embargoed), create(other, "y", &[])],
    );
    let mut published = release(id, "x", &["tech"], 1_700_000_000);
    published.revision = 1;
    commit(
        &store,
        vec![replace(id, 1, published.clone(), ChangeKind::Published)],
    );
    let mut moved = published.clone();
    moved.revision = 2;
    moved.channels = vec!["sport".into()];
    commit(&store, vec![replace(id, 2, moved, ChangeKind::Updated)]);

    let log = ok(store.read_log(0, 10, 10));
    assert_eq!(log.len(), 4);
    let tech = facet_hash(Facet::Channel, "tech");
    let sport = facet_hash(Facet::Channel, "sport");
    // Created embargoed: not visible, no link.
    assert_eq!(
        (log[0].prev_seq, log[0].prev_visible, log[0].visible),
        (0, false, false)
    );
    assert!(log[0].facets.is_empty());
    // Published: linked to the creation, visible now with its facets.
    assert_eq!(
        (log[2].prev_seq, log[2].prev_visible, log[2].visible),
        (1, false, true)
    );
    assert!(log[2].facets.contains(&tech));
    assert!(log[2].prev_facets.is_empty());
    // Updated: the previous version's facets ride along.
    assert_eq!(
        (log[3].prev_seq, log[3].prev_visible, log[3].visible),
        (3, true, true)
    );
    assert!(log[3].prev_facets.contains(&tech) && !log[3].prev_facets.contains(&sport));
    assert!(log[3].facets.contains(&sport) && !log[3].facets.contains(&tech));
    assert_eq!(log[3].change_kind(), ChangeKind::Updated);
}

fn commit_time_positions(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(ok(store.log_position_at(&at(0))), 0);
    for (time, count) in [(100, 2), (200, 3), (300, 1)] {
        let changes = (0..count)
            .map(|_| create(Uuid::now_v7(), "t", &[]))
            .collect();
        ok(store.commit(changes, at(time)));
    }
    // Entries 1-2 at 100, 3-5 at 200, 6 at 300.
    assert_eq!(ok(store.log_position_at(&at(50))), 0);
    assert_eq!(ok(store.log_position_at(&at(100))), 0);
    assert_eq!(ok(store.log_position_at(&at(150))), 2);
    assert_eq!(ok(store.log_position_at(&at(300))), 5);
    assert_eq!(ok(store.log_position_at(&at(301))), 6);
    // A clock that goes back does not make commit times go back.
    ok(store.commit(vec![create(Uuid::now_v7(), "late", &[])], at(250)));
    let last = ok(store.read_log(6, 7, 1));
    assert_eq!(last[0].commit_time, Some(at(300)));
}

fn embargo_index(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(ok(store.next_embargo()), None);
    let embargo = |id: Uuid, seconds: i64| {
        let Change::Create(mut create) = create(id, "e", &[]) else {
            unreachable!()
        };
        create.release.state = State::Embargoed as i32;
        create.release.embargo_time = Some(at(seconds));
        Change::Create(create)
    };
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    commit(
        &store,
        vec![embargo(a, 300), embargo(b, 100), embargo(c, 200)],
    );
    assert_eq!(ok(store.next_embargo()), Some((at(100), b)));
    assert_eq!(ok(store.embargoes_due(&at(250), 10)), vec![b, c]);
    assert_eq!(ok(store.embargoes_due(&at(250), 1)), vec![b]);
    assert!(ok(store.embargoes_due(&at(99), 10)).is_empty());

    // Moving an embargo moves its index entry; publishing or withdrawing
    // removes it.
    let mut later = release(b, "e", &[], 1_700_000_000);
    later.state = State::Embargoed as i32;
    later.embargo_time = Some(at(400));
    let mut published = release(c, "e", &[], 1_700_000_000);
    published.revision = 1;
    let tombstone = PressRelease {
        state: State::Withdrawn as i32,
        ..Default::default()
    };
    commit(
        &store,
        vec![
            replace(b, 1, later, ChangeKind::Updated),
            replace(c, 1, published, ChangeKind::Published),
            replace(a, 1, tombstone, ChangeKind::Withdrawn),
        ],
    );
    assert_eq!(ok(store.next_embargo()), Some((at(400), b)));
    assert_eq!(ok(store.embargoes_due(&at(1_000), 10)), vec![b]);
}

fn published_counts(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let hour = 3_600;
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    commit(
        &store,
        vec![
            create_at(a, "a", &["tech"], 10 * hour + 5),
            create_at(b, "b", &["tech"], 10 * hour + 7),
            create_at(c, "c", &["sport"], 12 * hour),
            create_at(d, "d", &[], 30 * hour),
        ],
    );
    assert_eq!(ok(store.published_total()), 4);
    assert_eq!(
        ok(store.published_per_hour(0, 100)),
        vec![(10, 2), (12, 1), (30, 1)]
    );
    assert_eq!(ok(store.published_per_hour(11, 30)), vec![(12, 1)]);

    // Moving a release to another hour, and withdrawing one, move the counts.
    let mut moved = release(b, "b", &["tech"], 12 * hour + 1);
    moved.revision = 1;
    let tombstone = PressRelease {
        state: State::Withdrawn as i32,
        ..Default::default()
    };
    commit(
        &store,
        vec![
            replace(b, 1, moved, ChangeKind::Updated),
            replace(d, 1, tombstone, ChangeKind::Withdrawn),
        ],
    );
    assert_eq!(ok(store.published_total()), 3);
    assert_eq!(ok(store.published_per_hour(0, 100)), vec![(10, 1), (12, 2)]);

    let mut times = Vec::new();
    ok(store.published_times(&ListQuery::default(), &mut |t| times.push(t.seconds)));
    assert_eq!(times, vec![12 * hour + 1, 12 * hour, 10 * hour + 5]);
    let tech_after_11 = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        published_at_or_after: Some(at(11 * hour)),
        ..Default::default()
    };
    let mut times = Vec::new();
    ok(store.published_times(&tech_after_11, &mut |t| times.push(t.seconds)));
    assert_eq!(times, vec![12 * hour + 1]);
}

fn subscription(id: &str) -> super::SubscriptionRecord {
    super::SubscriptionRecord {
        subscription: Some(crate::proto::v1::Subscription {
            name: format!("subscriptions/{id}"),
            query: "solar".into(),
            max_deliveries: 5,
            creator: "reader-1".into(),
            ..Default::default()
        }),
        start: 7,
    }
}

/// Definitions: create once, read, list in id order after a given id,
/// delete with all state, and all of it kept across reopening.
fn subscriptions(open: Open<'_>, dir: &Path) {
    {
        let store = ok(open(dir));
        assert_eq!(ok(store.subscription("a")), None);
        assert!(ok(store.create_subscription(&subscription("b"), 7)));
        assert!(ok(store.create_subscription(&subscription("a"), 0)));
        assert!(ok(store.create_subscription(&subscription("a-1"), 3)));
        let mut other = subscription("a");
        other.start = 99;
        assert!(
            !ok(store.create_subscription(&other, 99)),
            "an existing id is not overwritten"
        );
        assert_eq!(ok(store.subscription("a")), Some(subscription("a")));
        let ids = |records: Vec<super::SubscriptionRecord>| -> Vec<String> {
            records
                .into_iter()
                .filter_map(|r| r.subscription.map(|s| s.name))
                .collect()
        };
        assert_eq!(
            ids(ok(store.subscriptions("", 10))),
            ["subscriptions/a", "subscriptions/a-1", "subscriptions/b"]
        );
        assert_eq!(ids(ok(store.subscriptions("a", 1))), ["subscriptions/a-1"]);
        assert_eq!(ids(ok(store.subscriptions("a-1", 10))), ["subscriptions/b"]);
        assert_eq!(
            ok(store.subscription_state("a")).map(|s| s.position),
            Some(0)
        );
        assert_eq!(
            ok(store.subscription_state("b")).map(|s| s.position),
            Some(7)
        );
        assert_eq!(ok(store.subscription_state("zz")), None);
        assert!(ok(store.delete_subscription("b")));
        assert!(!ok(store.delete_subscription("b")));
    }
    let store = ok(open(dir));
    assert_eq!(ok(store.subscription("b")), None);
    assert_eq!(ok(store.subscription_state("b")), None);
    assert_eq!(ok(store.subscriptions("", 10)).len(), 2);
}

/// State: positions only move forward (Seek aside), event states after the
/// position are kept and forgotten when it passes them, dead letters are
/// upserted and removed, changes for unknown subscriptions are skipped,
/// and everything survives reopening.
fn subscription_state(open: Open<'_>, dir: &Path) {
    use super::{EventState, StoredDeadLetter, SubscriptionChange as C};
    let event = |seq, acked, deliveries| C::Event {
        id: "s".into(),
        seq,
        state: EventState { acked, deliveries },
    };
    let letter = |seq, replaying| StoredDeadLetter {
        seq,
        release_id: vec![7; 16],
        event_type: 1,
        deliveries: 5,
        time: Some(at(1_700_000_000)),
        replaying,
    };
    {
        let store = ok(open(dir));
        assert!(ok(store.create_subscription(&subscription("s"), 10)));
        ok(store.commit_subscriptions(vec![
            event(12, true, 1),
            event(13, false, 3),
            event(20, false, 2),
            // Not before the position: ignored.
            event(9, true, 1),
            C::DeadLetter {
                id: "s".into(),
                letter: letter(11, false),
            },
            C::Event {
                id: "gone".into(),
                seq: 12,
                state: EventState::default(),
            },
        ]));
        let state = ok(store.subscription_state("s")).unwrap_or_default();
        assert_eq!(state.position, 10);
        assert_eq!(
            state.events.keys().copied().collect::<Vec<_>>(),
            [12, 13, 20]
        );
        assert_eq!(
            state.events[&13],
            EventState {
                acked: false,
                deliveries: 3
            }
        );
        assert_eq!(state.dead_letters, [letter(11, false)]);
        assert_eq!(
            ok(store.subscription("gone")),
            None,
            "not brought into being"
        );
        ok(store.commit_subscriptions(vec![
            C::Advance {
                id: "s".into(),
                position: 13,
            },
            // Written and passed in the same batch: forgotten.
            event(14, true, 1),
            C::Advance {
                id: "s".into(),
                position: 15,
            },
            // Never back.
            C::Advance {
                id: "s".into(),
                position: 2,
            },
            C::DeadLetter {
                id: "s".into(),
                letter: letter(11, true),
            },
        ]));
        let state = ok(store.subscription_state("s")).unwrap_or_default();
        assert_eq!(state.position, 15);
        assert_eq!(state.events.keys().copied().collect::<Vec<_>>(), [20]);
        assert_eq!(state.dead_letters, [letter(11, true)]);
    }
    let store = ok(open(dir));
    let state = ok(store.subscription_state("s")).unwrap_or_default();
    assert_eq!(
        (state.position, state.events.len(), state.dead_letters.len()),
        (15, 1, 1),
        "kept across reopening"
    );
    ok(store.commit_subscriptions(vec![
        event(30, true, 1),
        C::Seek {
            id: "s".into(),
            position: 3,
        },
        C::RemoveDeadLetter {
            id: "s".into(),
            seq: 11,
        },
    ]));
    let state = ok(store.subscription_state("s")).unwrap_or_default();
    assert_eq!(state.position, 3, "seek goes back");
    assert!(state.events.is_empty(), "seek forgets every event state");
    assert!(state.dead_letters.is_empty());
    // A store whose writes and subscription commits interleave keeps both.
    let id = Uuid::now_v7();
    commit(&store, vec![create(id, "Interleaved", &["Tech"])]);
    ok(store.commit_subscriptions(vec![C::Advance {
        id: "s".into(),
        position: 4,
    }]));
    drop(store);
    let store = ok(open(dir));
    assert!(ok(store.get(&id)).is_some());
    assert_eq!(
        ok(store.subscription_state("s")).map(|s| s.position),
        Some(4)
    );
}

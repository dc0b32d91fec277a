//! The PostgreSQL engine on a real PostgreSQL (a [`LocalCluster`] per
//! test): the conformance suite, and what only a shared database can show —
//! replicas committing at once, idempotency across them, commits cut off
//! mid-way, following the head, leadership, schema versions, TLS.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    sync::Arc,
    time::Duration,
};

use uuid::Uuid;

use super::{
    ClusterOptions, LeadershipTiming, LocalCluster, PostgresOptions, PostgresStore,
    connect::Target, schema,
};
use crate::{
    proto::{
        Timestamp, compare_times,
        v1::{PressRelease, press_release::State},
    },
    store::{
        Applied, Change, ChangeKind, ChangeResult, ListQuery, LogEntry, NewRelease, Rejected,
        Replacement, StoreError, conformance,
    },
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn start_cluster() -> LocalCluster {
    LocalCluster::start(&ClusterOptions::default())
        .unwrap_or_else(|error| panic!("a local PostgreSQL is needed for this test: {error}"))
}

#[test]
fn passes_the_conformance_suite() {
    let cluster = start_cluster();
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
    );
    // Each check's directory names its own database; reopening the same
    // directory reopens the same database.
    let open = |dir: &Path| {
        let name = format!("conformance_{:016x}", {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            dir.hash(&mut hasher);
            hasher.finish()
        });
        runtime
            .block_on(cluster.create_database(&name))
            .map_err(StoreError::engine)?;
        let store = runtime.block_on(PostgresStore::open(
            &cluster.url(&name),
            PostgresOptions::default(),
        ))?;
        Ok(conformance::Engine::new(
            Arc::new(store),
            Arc::clone(&runtime),
        ))
    };
    conformance::run(&open);
    conformance::run_subscriptions(&open);
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn new_release(id: Uuid, headline: &str) -> PressRelease {
    PressRelease {
        name: format!("pressReleases/{id}"),
        headline: headline.into(),
        channels: vec!["tech".into()],
        publish_time: Some(at(1_700_000_000)),
        state: State::Published as i32,
        revision: 1,
        ..Default::default()
    }
}

fn create(id: Uuid, headline: &str) -> Change {
    Change::Create(NewRelease {
        id,
        release: new_release(id, headline),
        request_id: None,
        source: None,
        fingerprint: headline.as_bytes().to_vec(),
    })
}

fn with_request(id: Uuid, request_id: &str) -> Change {
    let Change::Create(mut create) = create(id, request_id) else {
        unreachable!()
    };
    create.request_id = Some(request_id.into());
    Change::Create(create)
}

async fn open(url: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(url, PostgresOptions::default()).await
}

async fn database(cluster: &LocalCluster, name: &str) -> Result<String, tokio_postgres::Error> {
    cluster.create_database(name).await?;
    Ok(cluster.url(name))
}

/// Reads the log from `after` up to the followed head, checking that it is
/// a gapless run in commit order.
async fn read_prefix(
    store: &PostgresStore,
    after: u64,
    last_time: &mut Timestamp,
) -> Result<Vec<LogEntry>, StoreError> {
    let head = store.log_head();
    let entries = store.read_log(after, head, 500).await?;
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry.seq,
            after + 1 + i as u64,
            "a gap or a jump in the log"
        );
        let time = entry.commit_time.unwrap_or_default();
        assert!(
            compare_times(&time, last_time).is_ge(),
            "commit times go back at {}",
            entry.seq
        );
        *last_time = time;
    }
    if entries.len() < 500 {
        assert_eq!(
            entries.last().map_or(after, |e| e.seq),
            head,
            "every entry up to the head is readable"
        );
    }
    Ok(entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_commit_concurrently_into_one_gapless_log_in_commit_order() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "replicas").await?;
    let (a, b) = (Arc::new(open(&url).await?), Arc::new(open(&url).await?));
    let reader = PostgresStore::open(
        &url,
        PostgresOptions {
            poll_interval: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await?;
    // Releases both replicas update, racing on their revisions.
    let shared: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    a.commit(
        &shared
            .iter()
            .map(|id| create(*id, "shared"))
            .collect::<Vec<_>>(),
        None,
    )
    .await?;

    let writer = |store: Arc<PostgresStore>, seed: u64| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut batches: Vec<Vec<(Uuid, ChangeResult)>> = Vec::new();
            let mut written = 0;
            let mut round = seed;
            while written < 1_600 {
                round = round
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let size = 1 + (round >> 33) as usize % 12;
                let mut changes = Vec::new();
                let mut ids = Vec::new();
                for _ in 0..size {
                    let id = Uuid::now_v7();
                    ids.push(id);
                    changes.push(create(id, "new"));
                }
                // Now and then, a compare-and-swap on a shared release.
                if round.is_multiple_of(3) {
                    let id = shared[(round >> 40) as usize % shared.len()];
                    if let Some(current) = store.get(&id).await? {
                        let mut next = current.clone();
                        next.headline = format!("by {seed}");
                        next.revision = current.revision + 1;
                        ids.push(id);
                        changes.push(Change::Replace(Replacement {
                            id,
                            expected_revision: current.revision,
                            release: next,
                            kind: ChangeKind::Updated,
                            source_fingerprint: None,
                        }));
                    }
                }
                written += changes.len();
                let results = store.commit(&changes, None).await?;
                batches.push(ids.into_iter().zip(results).collect());
            }
            Ok::<_, StoreError>(batches)
        })
    };
    let (task_a, task_b) = (writer(Arc::clone(&a), 1), writer(Arc::clone(&b), 2));

    // Follow the head while they write: always a gapless prefix.
    let mut log = Vec::new();
    let mut last_time = Timestamp::default();
    let mut position = 0;
    while !(task_a.is_finished() && task_b.is_finished()) {
        let mut entries = read_prefix(&reader, position, &mut last_time).await?;
        position = entries.last().map_or(position, |e| e.seq);
        log.append(&mut entries);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let batches: Vec<_> = [task_a.await??, task_b.await??].concat();
    let db = cluster.connect("replicas").await?;
    let final_head = db
        .query_one("SELECT head FROM pressroom.log_head", &[])
        .await?
        .get::<_, i64>(0) as u64;
    let mut head = reader.follow_head();
    tokio::time::timeout(Duration::from_secs(5), head.wait_for(|h| *h >= final_head)).await??;
    loop {
        let mut entries = read_prefix(&reader, position, &mut last_time).await?;
        if entries.is_empty() {
            break;
        }
        position = entries.last().map_or(position, |e| e.seq);
        log.append(&mut entries);
    }
    assert_eq!(position, reader.log_head());
    let by_seq: BTreeMap<u64, &LogEntry> = log.iter().map(|e| (e.seq, e)).collect();
    assert_eq!(by_seq.len() as u64, position, "every entry read once");

    // Each batch's committed changes are one run of the log, in batch
    // order, naming the releases and revisions the batch wrote.
    let mut committed = 0;
    let mut stale = 0;
    for batch in &batches {
        let mut seqs = Vec::new();
        for (id, result) in batch {
            match result {
                Ok(Applied::Committed { release, seq }) => {
                    let entry = by_seq[seq];
                    assert_eq!(entry.release_id, id.as_bytes().to_vec());
                    assert_eq!(entry.revision, release.revision);
                    seqs.push(*seq);
                }
                Err(Rejected::Stale(_)) => stale += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        committed += seqs.len();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a batch is one run: {seqs:?}"
        );
    }
    assert_eq!(committed as u64 + 8, position, "nothing but the batches");
    assert!(committed >= 3_000, "thousands of changes: {committed}");
    eprintln!("{committed} changes committed, {stale} compare-and-swaps lost the race");
    // The shared releases' revisions count their committed updates.
    for id in &shared {
        let updates = log
            .iter()
            .filter(|e| e.release_id == id.as_bytes().to_vec())
            .count() as i64;
        let current = a.get(id).await?.map(|r| r.revision);
        assert_eq!(current, Some(updates), "one revision per committed update");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_ids_and_sources_hold_across_replicas() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "idempotency").await?;
    let (a, b) = (Arc::new(open(&url).await?), Arc::new(open(&url).await?));
    let sourced = |id: Uuid, item: usize, fingerprint: &str| {
        let Change::Create(mut create) = create(id, "sourced") else {
            unreachable!()
        };
        create.source = Some(("wire".into(), format!("item-{item}")));
        create.fingerprint = fingerprint.as_bytes().to_vec();
        Change::Create(create)
    };
    let run = |store: Arc<PostgresStore>, fingerprint: &'static str| {
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for chunk in (0..300).collect::<Vec<usize>>().chunks(10) {
                let changes: Vec<Change> = chunk
                    .iter()
                    .flat_map(|i| {
                        [
                            with_request(Uuid::now_v7(), &format!("req-{i}")),
                            sourced(
                                Uuid::now_v7(),
                                *i,
                                if i % 2 == 0 { "same" } else { fingerprint },
                            ),
                        ]
                    })
                    .collect();
                outcomes.extend(store.commit(&changes, None).await?);
            }
            Ok::<_, StoreError>(outcomes)
        })
    };
    let (one, two) = (run(Arc::clone(&a), "one"), run(Arc::clone(&b), "two"));
    let (one, two) = (one.await??, two.await??);
    let mut requests: HashMap<usize, Vec<String>> = HashMap::new();
    let mut created_sources = 0;
    for outcomes in [&one, &two] {
        for (index, outcome) in outcomes.iter().enumerate() {
            let item = index / 2;
            match (index % 2, outcome) {
                (0, Ok(Applied::Committed { release, .. } | Applied::Existing(release))) => {
                    requests.entry(item).or_default().push(release.name.clone());
                }
                (1, Ok(Applied::Committed { .. })) => created_sources += 1,
                (1, Ok(Applied::Existing(_))) => assert_eq!(item % 2, 0, "same content only"),
                (1, Err(Rejected::SourceTaken(_))) => assert_eq!(item % 2, 1, "other content"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(created_sources, 300, "each source created once");
    for (item, names) in &requests {
        assert_eq!(names.len(), 2);
        assert_eq!(
            names[0], names[1],
            "both replicas answer req-{item} with one release"
        );
    }
    // The other replica's last commits reach this one's followed head by
    // LISTEN or the next poll.
    let mut head = a.follow_head();
    let _ = tokio::time::timeout(Duration::from_secs(5), head.wait_for(|h| *h >= 600)).await;
    assert_eq!(
        a.log_head(),
        600,
        "one create per request id and per source"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_cut_off_mid_way_is_resolved_never_guessed() -> TestResult {
    let cluster = start_cluster();
    let name = "cutoff";
    cluster.create_database(name).await?;
    let url = cluster.url_with(name, "sslmode=disable&application_name=replica-a");
    let store = Arc::new(open(&url).await?);
    let db = cluster.connect(name).await?;

    // The batch id is looked up after waiting for the head lock: a commit
    // still in flight on another session decides the answer.
    let batch = Uuid::new_v4();
    for outcome in [true, false] {
        db.batch_execute("BEGIN; SELECT 1 FROM pressroom.log_head FOR UPDATE;")
            .await?;
        db.execute(
            "INSERT INTO pressroom.commits (first_seq, last_seq, commit_time, batch_id)
             VALUES (1000000, 1000000, '\\x00'::bytea, $1)",
            &[&batch],
        )
        .await?;
        let resolving = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.resolve(batch).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!resolving.is_finished(), "waits for the transaction to end");
        db.batch_execute(if outcome { "COMMIT" } else { "ROLLBACK" })
            .await?;
        assert_eq!(resolving.await??, outcome);
        db.execute(
            "DELETE FROM pressroom.commits WHERE batch_id = $1",
            &[&batch],
        )
        .await?;
    }

    // Commits made slow at COMMIT time, and their sessions killed there.
    db.batch_execute(
        "CREATE FUNCTION public.slow_commit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON pressroom.commits
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.slow_commit();",
    )
    .await?;
    let admin = cluster.admin().await?;
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut killed = 0;
    for round in 0..12 {
        let changes: Vec<Change> = (0..5)
            .map(|i| with_request(Uuid::now_v7(), &format!("r{round}-{i}")))
            .collect();
        let committing = {
            let store = Arc::clone(&store);
            let changes = changes.clone();
            tokio::spawn(async move { store.commit(&changes, None).await })
        };
        // Kill the session as soon as it is in COMMIT (held there by the
        // trigger), however long the steps before it take on a busy machine.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline && !committing.is_finished() {
            let hit = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = 'replica-a' AND query ILIKE 'COMMIT%'
                       AND state = 'active'",
                    &[],
                )
                .await?
                .len();
            if hit > 0 {
                killed += hit;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let requests: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
        match committing.await? {
            Ok(results) => {
                assert!(
                    results
                        .iter()
                        .all(|r| matches!(r, Ok(Applied::Committed { .. })))
                );
                acknowledged.extend(requests);
            }
            Err(StoreError::Unavailable(reason)) => {
                eprintln!("round {round} refused: {reason}");
                refused.extend(requests)
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(killed >= 10, "sessions were killed during COMMIT: {killed}");
    // Every acknowledged create is there once, and nothing twice.
    let rows = db
        .query("SELECT request_id FROM pressroom.request_ids", &[])
        .await?;
    let stored: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    for request in &acknowledged {
        assert!(stored.contains(request), "acknowledged {request} is stored");
    }
    let head: i64 = db
        .query_one("SELECT head FROM pressroom.log_head", &[])
        .await?
        .get(0);
    assert_eq!(head as usize, stored.len(), "one entry per stored create");
    let entries = store.read_log(0, head as u64, 10_000).await?;
    let ids: HashSet<Vec<u8>> = entries.iter().map(|e| e.release_id.clone()).collect();
    assert_eq!(ids.len(), entries.len(), "no release written twice");
    eprintln!(
        "{killed} sessions killed at COMMIT; {} creates acknowledged, {} refused",
        acknowledged.len(),
        refused.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_follow_the_head_by_polling_and_wake_on_notifications() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "follow").await?;
    let writer = open(&url).await?;
    let polling = PostgresStore::open(
        &url,
        PostgresOptions {
            poll_interval: Duration::from_millis(150),
            listen: false,
            ..Default::default()
        },
    )
    .await?;
    let listening = PostgresStore::open(
        &url,
        PostgresOptions {
            poll_interval: Duration::from_secs(3_600),
            listen: true,
            ..Default::default()
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 1..=3u64 {
        writer.commit(&[create(Uuid::now_v7(), "x")], None).await?;
        assert_eq!(writer.log_head(), round, "its own commit moves it at once");
        for follower in [&polling, &listening] {
            let mut head = follower.follow_head();
            tokio::time::timeout(Duration::from_secs(2), head.wait_for(|h| *h >= round)).await??;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_leads_at_a_time_and_another_takes_over() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "leaders").await?;
    let (a, b, c) = (open(&url).await?, open(&url).await?, open(&url).await?);
    let timing = LeadershipTiming {
        check: Duration::from_millis(200),
        retry: Duration::from_millis(200),
    };
    let key = super::EMBARGO_SCHEDULER;
    let wait_for = |claims: &[&super::Leadership], count: usize| {
        let watches: Vec<_> = claims.iter().map(|l| l.watch()).collect();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let leading = watches.iter().filter(|w| *w.borrow()).count();
                if leading == count {
                    return Ok::<_, String>(());
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("{leading} leaders, expected {count}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let first = a.leadership(key, timing);
    let second = b.leadership(key, timing);
    wait_for(&[&first, &second], 1).await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        [first.is_leader(), second.is_leader()]
            .iter()
            .filter(|l| **l)
            .count(),
        1,
        "still exactly one"
    );
    // The leader steps down (dropped): the other takes over.
    let (leader, follower) = if first.is_leader() {
        (first, second)
    } else {
        (second, first)
    };
    drop(leader);
    wait_for(&[&follower], 1).await?;
    // The leader's session is killed: a third replica takes over.
    let third = c.leadership(key, timing);
    let admin = cluster.admin().await?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted",
            &[],
        )
        .await?;
    wait_for(&[&follower, &third], 1).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_created_migrated_and_a_newer_one_refused() -> TestResult {
    let cluster = start_cluster();
    // Three replicas starting at once on an empty database agree on one store.
    let url = database(&cluster, "fresh").await?;
    let opened = futures_util::future::join_all((0..3).map(|_| open(&url))).await;
    let ids: HashSet<Uuid> = opened
        .into_iter()
        .map(|store| store.map(|s| s.store_id()))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), 1, "one store id");

    // A database of an older format (here: before the first) is migrated.
    let url = database(&cluster, "older").await?;
    let mut client = cluster.connect("older").await?;
    let id = schema::prepare_up_to(&mut client, 0).await?;
    let store = open(&url).await?;
    assert_eq!(store.store_id(), id, "migrating keeps the store id");
    store.commit(&[create(Uuid::now_v7(), "x")], None).await?;
    assert_eq!(store.log_head(), 1);

    // A newer format is refused, clearly.
    schema::set_format(&client, 99).await?;
    match open(&url).await {
        Err(StoreError::UnsupportedFormat { found, supported }) => {
            assert_eq!((found, supported), (99, schema::FORMAT_VERSION as u32));
        }
        Err(other) => panic!("expected UnsupportedFormat, got {other}"),
        Ok(_) => panic!("a newer format was opened"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_follows_sslmode() -> TestResult {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir()?;
    let ca_params = || -> Result<CertificateParams, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ok(params)
    };
    let ca = CertifiedIssuer::self_signed(ca_params()?, KeyPair::generate()?)?;
    let other = CertifiedIssuer::self_signed(ca_params()?, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    let write = |name: &str, text: String| -> Result<String, std::io::Error> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    let (cert_file, key_file) = (
        write("server.crt", cert.pem())?,
        write("server.key", key.serialize_pem())?,
    );
    let (ca_file, other_file) = (write("ca.crt", ca.pem())?, write("other.crt", other.pem())?);
    let cluster = LocalCluster::start(&ClusterOptions {
        tls: Some((cert_file.into(), key_file.into())),
        ..Default::default()
    })?;
    let port = cluster.port();
    let url =
        |host: &str, query: &str| format!("postgres://pressroom@{host}:{port}/postgres?{query}");
    let encrypted = |url: String| async move {
        let client = Target::parse(&url)?.connect_dedicated(None).await?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok::<bool, Box<dyn std::error::Error + Send + Sync>>(row.get(0))
    };
    let full = format!("sslmode=verify-full&sslrootcert={ca_file}");
    let chain = format!("sslmode=verify-ca&sslrootcert={ca_file}");
    assert!(
        encrypted(url("localhost", &full)).await?,
        "verify-full, right name"
    );
    assert!(
        encrypted(url("127.0.0.1", &full)).await.is_err(),
        "verify-full refuses a name the certificate does not hold"
    );
    assert!(
        encrypted(url("127.0.0.1", &chain)).await?,
        "verify-ca ignores the name"
    );
    assert!(
        encrypted(url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={other_file}")
        ))
        .await
        .is_err(),
        "verify-ca refuses another CA's certificate"
    );
    assert!(
        encrypted(url("127.0.0.1", "sslmode=require")).await?,
        "require"
    );
    assert!(
        encrypted(url("127.0.0.1", "")).await?,
        "prefer, the default"
    );
    assert!(
        !encrypted(url("127.0.0.1", "sslmode=disable")).await?,
        "disable"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_over_whole() -> TestResult {
    use crate::store::{Facet, SledStore};
    let dir = tempfile::tempdir()?;
    let sled = Arc::new(SledStore::open(dir.path(), 16 << 20)?);
    // Creates (some with request ids, some with sources), updates, a
    // withdrawal and an embargo, over several commits at several times.
    let ids: Vec<Uuid> = (0..30).map(|_| Uuid::now_v7()).collect();
    for (round, chunk) in ids.chunks(10).enumerate() {
        let changes = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let Change::Create(mut create) = create(*id, &format!("r{round}-{i}")) else {
                    unreachable!()
                };
                create.release.publish_time = Some(at(1_700_000_000 + 3_000 * i as i64));
                if i % 3 == 0 {
                    create.request_id = Some(format!("req-{round}-{i}"));
                }
                if i % 3 == 1 {
                    create.source = Some(("wire".into(), format!("item-{round}-{i}")));
                }
                if i == 9 {
                    create.release.state = State::Embargoed as i32;
                    create.release.embargo_time = Some(at(4_000_000_000 + round as i64));
                }
                Change::Create(create)
            })
            .collect();
        sled.commit(changes, Some(at(1_800_000_000 + 100 * round as i64)))?;
    }
    let mut updated = new_release(ids[0], "updated");
    updated.revision = 2;
    updated.channels = vec!["sport".into()];
    let tombstone = PressRelease {
        name: format!("pressReleases/{}", ids[1]),
        state: State::Withdrawn as i32,
        revision: 2,
        ..Default::default()
    };
    let replace = |id: Uuid, release: PressRelease, kind: ChangeKind| {
        Change::Replace(Replacement {
            id,
            expected_revision: 1,
            release,
            kind,
            source_fingerprint: None,
        })
    };
    sled.commit(
        vec![
            replace(ids[0], updated, ChangeKind::Updated),
            replace(ids[1], tombstone, ChangeKind::Withdrawn),
        ],
        Some(at(1_800_001_000)),
    )?;

    let cluster = start_cluster();
    let url = database(&cluster, "migrated").await?;
    let pg = open(&url).await?;
    let (items, received) = tokio::sync::mpsc::channel(16);
    let exporting = {
        let sled = Arc::clone(&sled);
        tokio::task::spawn_blocking(move || {
            sled.export(&mut |item| {
                items
                    .blocking_send(Ok(item))
                    .map_err(|_| StoreError::Closed)
            })
        })
    };
    let summary = pg.import(sled.store_id(), 32, received).await?;
    let head = exporting.await??;
    assert_eq!((summary.releases, summary.entries, head), (30, 32, 32));
    assert_eq!(summary.keys, 21, "12 request ids and 9 sources");

    // A fresh replica sees the same store, read by read.
    let pg = open(&url).await?;
    assert_eq!(pg.store_id(), sled.store_id(), "the store id came along");
    assert_eq!(pg.log_head(), 32);
    assert_eq!(pg.read_log(0, 32, 100).await?, sled.read_log(0, 32, 100)?);
    for id in &ids {
        assert_eq!(pg.get(id).await?, sled.get(id)?, "release {id}");
    }
    let tech = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        ..Default::default()
    };
    for query in [ListQuery::default(), tech] {
        assert_eq!(
            pg.list(&query, None, 100).await?,
            sled.list(&query, None, 100)?
        );
    }
    assert_eq!(pg.published_total().await?, sled.published_total()?);
    assert_eq!(
        pg.published_per_hour(0, i64::MAX).await?,
        sled.published_per_hour(0, i64::MAX)?
    );
    for seconds in [
        0,
        1_800_000_000,
        1_800_000_050,
        1_800_000_200,
        1_900_000_000,
    ] {
        assert_eq!(
            pg.log_position_at(&at(seconds)).await?,
            sled.log_position_at(&at(seconds))?,
            "position at {seconds}"
        );
    }
    assert_eq!(pg.next_embargo().await?, sled.next_embargo()?);
    assert_eq!(pg.embargoed().await?, sled.embargoed()?);

    // Retries are still recognised, and the log goes on without a gap.
    let retry = pg
        .commit(&[with_request(Uuid::now_v7(), "req-1-3")], None)
        .await?;
    assert!(
        matches!(&retry[0], Ok(Applied::Existing(r)) if r.name == format!("pressReleases/{}", ids[13]))
    );
    let next = pg.commit(&[create(Uuid::now_v7(), "after")], None).await?;
    assert!(matches!(next[0], Ok(Applied::Committed { seq: 33, .. })));

    // A database that holds a store is not imported into.
    let (items, received) = tokio::sync::mpsc::channel(1);
    drop(items);
    assert!(matches!(
        pg.import(Uuid::new_v4(), 0, received).await,
        Err(StoreError::Unsupported(_))
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_overlapping_publish_each_embargo_once() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "embargoes").await?;
    let (a, b) = (Arc::new(open(&url).await?), Arc::new(open(&url).await?));
    let ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let embargoed: Vec<Change> = ids
        .iter()
        .map(|id| {
            let Change::Create(mut create) = create(*id, "embargoed") else {
                unreachable!()
            };
            create.release.state = State::Embargoed as i32;
            create.release.embargo_time = Some(at(1_600_000_000));
            Change::Create(create)
        })
        .collect();
    a.commit(&embargoed, None).await?;
    // What a scheduler does with due embargoes (the domain's publish_due):
    // read them, then publish each still embargoed with a compare-and-swap
    // on the revision it read. Both replicas
    // do it at once, as two leaders would in a brief overlap.
    let schedule = |store: Arc<PostgresStore>| {
        tokio::spawn(async move {
            let mut published = 0;
            loop {
                let due = store.embargoes_due(&at(1_700_000_000), 10).await?;
                if due.is_empty() {
                    return Ok::<_, StoreError>(published);
                }
                let mut changes = Vec::new();
                for id in due {
                    // As the domain's publish_due: only what is still embargoed.
                    if let Some(current) = store.get(&id).await?
                        && current.state() == State::Embargoed
                    {
                        let mut next = current.clone();
                        next.state = State::Published as i32;
                        next.revision = current.revision + 1;
                        changes.push(Change::Replace(Replacement {
                            id,
                            expected_revision: current.revision,
                            release: next,
                            kind: ChangeKind::Published,
                            source_fingerprint: None,
                        }));
                    }
                }
                for result in store.commit(&changes, None).await? {
                    match result {
                        Ok(Applied::Committed { .. }) => published += 1,
                        Err(Rejected::Stale(release)) => {
                            assert_eq!(release.state(), State::Published, "lost to the other")
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        })
    };
    let (one, two) = (schedule(Arc::clone(&a)), schedule(Arc::clone(&b)));
    let (one, two) = (one.await??, two.await??);
    assert_eq!(one + two, 200, "each embargo published once: {one} + {two}");
    let entries = a.read_log(0, u64::MAX, 10_000).await?;
    let published = entries
        .iter()
        .filter(|e| e.change_kind() == ChangeKind::Published)
        .count();
    assert_eq!(published, 200, "one Published entry per release");
    assert_eq!(a.embargoes_pending().await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_filter_reads_the_gin_index_and_a_broad_one_the_list_order() -> TestResult {
    let cluster = start_cluster();
    let url = database(&cluster, "plans").await?;
    let store = open(&url).await?;
    // 3,000 releases in "tech", 3 of them in "rare" as well.
    let changes: Vec<Change> = (0..3_000)
        .map(|i| {
            let id = Uuid::new_v4();
            let mut change = create(id, &format!("release {i}"));
            if let Change::Create(new) = &mut change
                && i % 1_000 == 0
            {
                new.release.channels.push("rare".into());
            }
            change
        })
        .collect();
    store.commit(&changes, None).await?;
    // What autovacuum does after a bulk load: the planner's statistics.
    cluster
        .connect("plans")
        .await?
        .batch_execute("ANALYZE")
        .await?;
    let channel = |value: &str| ListQuery {
        facets: vec![(
            crate::store::Facet::Channel,
            vec![crate::store::Facet::Channel.normalize(value)],
        )],
        ..Default::default()
    };

    let narrow = store.explain_list(&channel("rare"), 51).await?.join("\n");
    assert!(
        narrow.contains("releases_by_facet"),
        "a rare value reads the GIN index:\n{narrow}"
    );
    let broad = store.explain_list(&channel("tech"), 51).await?.join("\n");
    assert!(
        broad.contains("releases_by_position") && !broad.contains("releases_by_facet"),
        "a value most releases have walks the list order:\n{broad}"
    );
    assert_eq!(store.list(&channel("rare"), None, 50).await?.len(), 3);
    assert_eq!(store.list(&channel("tech"), None, 50).await?.len(), 50);
    Ok(())
}

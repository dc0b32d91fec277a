//! The server on PostgreSQL (`serve --store postgres://…`), on a private
//! cluster each test starts: every RPC behaves as on sled, and replicas
//! sharing one database — in-process and as real `pressroom serve`
//! processes — see one change log: writes on one reach watchers on the
//! other (history, then live, nothing missed or repeated), cursors resume
//! anywhere, search catches up on each replica, a replica killed mid-import
//! leaves nothing half-written, connections cut mid-commit lose no
//! acknowledged write and make no duplicate, and replicas racing the
//! embargo scheduler publish each release once.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use pressroom::{
    proto::v1::{
        BackupPressReleasesRequest, DeletePressReleaseRequest, EventType, GetPressReleaseRequest,
        GetPressReleaseStatsRequest, ImportPressReleasesRequest, PressRelease,
        SearchPressReleasesRequest, StartPosition, UpdatePressReleaseRequest,
        WatchPressReleasesRequest, press_release::State,
        press_release_service_client::PressReleaseServiceClient,
        watch_press_releases_request::Start, watch_press_releases_response::Kind,
    },
    store::postgres::{ClusterOptions, LocalCluster},
};
use tokio_stream::StreamExt as _;
use tonic::{Code, transport::Channel};

use crate::helpers::{
    Binary, TestResult, TestServer, channel, create_request, from_now, list_all, read_events,
    read_until, read_until_caught_up, release, seq, temp_dir, watch,
};

/// A private cluster with one database, and its URL.
async fn database() -> Result<(LocalCluster, String), Box<dyn std::error::Error + Send + Sync>> {
    let cluster = LocalCluster::start(&ClusterOptions::default())
        .map_err(|e| format!("a local PostgreSQL is needed for this test: {e}"))?;
    cluster.create_database("pressroom").await?;
    let url = cluster.url("pressroom");
    Ok((cluster, url))
}

fn from(start: Start) -> WatchPressReleasesRequest {
    WatchPressReleasesRequest {
        start: Some(start),
        ..Default::default()
    }
}

fn beginning() -> WatchPressReleasesRequest {
    from(Start::Position(StartPosition::Beginning as i32))
}

/// Searches until `query` finds `count` releases (UNAVAILABLE while the
/// replica's index is being built counts as not yet).
async fn search_finds(
    client: &mut PressReleaseServiceClient<Channel>,
    query: &str,
    count: usize,
) -> TestResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .search_press_releases(SearchPressReleasesRequest {
                query: query.into(),
                page_size: 100,
                ..Default::default()
            })
            .await
        {
            Ok(found) if found.get_ref().results.len() == count => return Ok(()),
            Ok(_) => {}
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => return Err(status.into()),
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("search for {query:?} never found {count}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_behaves_on_postgres() -> TestResult {
    let (_cluster, url) = database().await?;
    let server = TestServer::start_with(&["--store", &url]).await;
    let mut client = server.client.clone();
    let mut stream = watch(&mut client, beginning()).await?;

    // Create, idempotent by request id; get; update with the etag.
    let mut request = create_request(release("Harbour opens a second quay"));
    request.request_id = "quay-1".into();
    let created = client
        .create_press_release(request.clone())
        .await?
        .into_inner();
    let again = client.create_press_release(request).await?.into_inner();
    assert_eq!(again, created, "the same request id gives the same release");
    let got = client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(got, created);
    let mut edited = created.clone();
    edited.headline = "Harbour opens a third quay".into();
    let updated = client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(edited.clone()),
            update_mask: Some(pressroom::proto::FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    assert_eq!(updated.revision, created.revision + 1);
    // The old etag is stale now.
    let stale = client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(edited),
            update_mask: Some(pressroom::proto::FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await
        .err()
        .ok_or("a stale etag was taken")?;
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");

    // Import, then list, stats and search see everything.
    let items: Vec<ImportPressReleasesRequest> = (0..30)
        .map(|i| ImportPressReleasesRequest {
            press_release: Some(release(&format!("Imported lighthouse {i}"))),
            request_id: format!("import-{i}"),
        })
        .collect();
    let summary = client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!((summary.created, summary.failed.len()), (30, 0));
    assert_eq!(list_all(&mut client).await?.len(), 31);
    let stats = client
        .get_press_release_stats(GetPressReleaseStatsRequest::default())
        .await?
        .into_inner();
    assert_eq!(stats.total, 31);
    search_finds(&mut client, "lighthouse", 30).await?;

    // Withdraw; the watcher saw every change in order, then an embargo is
    // published at its time.
    let withdrawn = client
        .delete_press_release(DeletePressReleaseRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(withdrawn.state(), State::Withdrawn);
    let embargoed = client
        .create_press_release(create_request(PressRelease {
            embargo_time: Some(from_now(2)),
            ..release("Results at the bell")
        }))
        .await?
        .into_inner();
    let watched = read_until(&mut stream, Duration::from_secs(30), |w| {
        w.events
            .iter()
            .any(|e| e.r#type == EventType::Published as i32)
    })
    .await?;
    let of = |kind: EventType| -> BTreeSet<String> {
        watched
            .events
            .iter()
            .filter(|e| e.r#type == kind as i32)
            .filter_map(|e| e.press_release.as_ref().map(|r| r.name.clone()))
            .collect()
    };
    assert_eq!(
        of(EventType::Created).len(),
        30 + usize::from(of(EventType::Created).contains(&created.name))
    );
    assert_eq!(
        of(EventType::Withdrawn),
        BTreeSet::from([created.name.clone()])
    );
    let published = watched.events.last().ok_or("no event")?;
    assert_eq!(published.r#type, EventType::Published as i32);
    assert_eq!(
        published.press_release.as_ref().map(|r| r.name.clone()),
        Some(embargoed.name.clone())
    );
    let seqs: Vec<u64> = watched.events.iter().map(|e| seq(&e.cursor)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // A backup streams a snapshot (the portable format).
    let mut chunks = client
        .backup_press_releases(BackupPressReleasesRequest::default())
        .await?
        .into_inner();
    let mut bytes = 0;
    while let Some(chunk) = chunks.next().await {
        bytes += chunk?.chunk.len();
    }
    assert!(bytes > 0);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_process_share_one_log() -> TestResult {
    let (_cluster, url) = database().await?;
    let a = TestServer::start_with(&["--store", &url]).await;
    let b = TestServer::start_with(&["--store", &url]).await;
    let (mut on_a, mut on_b) = (a.client.clone(), b.client.clone());
    let mut names = Vec::new();
    for i in 0..10 {
        let created = on_a
            .create_press_release(create_request(release(&format!("Replicated quokka {i}"))))
            .await?
            .into_inner();
        names.push(created.name);
    }
    // History on B, then live: a stream learns the shared head when it
    // starts, so what A acknowledged before is history on B, caught up.
    let mut stream = watch(&mut on_b, beginning()).await?;
    let history = read_until_caught_up(&mut stream).await?;
    assert_eq!(history.names(), names);
    for i in 10..15 {
        let created = on_a
            .create_press_release(create_request(release(&format!("Replicated quokka {i}"))))
            .await?
            .into_inner();
        names.push(created.name);
    }
    let live = read_events(&mut stream, 5).await?;
    assert_eq!(live.names(), names[10..]);
    // A cursor A has just issued resumes on B at once (it is never "ahead
    // of B's log").
    let mut on_a_stream = watch(&mut on_a, beginning()).await?;
    let fresh = on_a
        .create_press_release(create_request(release("Replicated quokka 15")))
        .await?
        .into_inner();
    names.push(fresh.name);
    let newest = read_events(&mut on_a_stream, 16).await?;
    let mut right_after = watch(
        &mut on_b,
        from(Start::AfterCursor(newest.events[14].cursor.clone())),
    )
    .await?;
    assert_eq!(read_events(&mut right_after, 1).await?.names(), names[15..]);
    let mut on_a_stream = watch(&mut on_a, beginning()).await?;
    let from_a = read_events(&mut on_a_stream, 4).await?;
    let mut resumed = watch(
        &mut on_b,
        from(Start::AfterCursor(from_a.events[3].cursor.clone())),
    )
    .await?;
    let rest = read_events(&mut resumed, 12).await?;
    assert_eq!(rest.names(), names[4..]);
    // B's own search index catches up with what A wrote.
    search_finds(&mut on_b, "quokka", 16).await?;
    a.stop().await;
    b.stop().await;
    Ok(())
}

/// `pressroom serve` on the database, with a data dir of its own.
pub(crate) fn replica(
    url: &str,
    dir: &tempfile::TempDir,
    name: &str,
) -> Result<Binary, Box<dyn std::error::Error + Send + Sync>> {
    let data_dir = dir.path().join(name);
    Binary::serve(&[
        "--store",
        url,
        "--data-dir",
        &data_dir.display().to_string(),
        "--watch-progress-interval",
        "200ms",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_one_killed_mid_import() -> TestResult {
    let (_cluster, url) = database().await?;
    let dir = temp_dir();
    let a = replica(&url, &dir, "a")?;
    let b = replica(&url, &dir, "b")?;
    let mut on_a = PressReleaseServiceClient::new(channel(a.addr).await);
    let mut on_b = PressReleaseServiceClient::new(channel(b.addr).await);

    // Writes on A reach a watcher on B: history, then live, exactly once.
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let created = on_a
            .create_press_release(create_request(release(&format!("Process wombat {i}"))))
            .await?
            .into_inner();
        acknowledged.push(created.name);
    }
    let mut stream = watch(&mut on_b, beginning()).await?;
    let history = read_events(&mut stream, 20).await?;
    assert_eq!(history.names(), acknowledged);
    let cursor_from_b = history.events[19].cursor.clone();

    // Creates acknowledged on A while an import runs on A, which is then
    // killed with SIGKILL.
    let importing = {
        let mut on_a = on_a.clone();
        tokio::spawn(async move {
            let items = (0..5_000).map(|i| ImportPressReleasesRequest {
                press_release: Some(release(&format!("Bulk numbat {i}"))),
                request_id: format!("bulk-{i}"),
            });
            on_a.import_press_releases(tokio_stream::iter(items)).await
        })
    };
    for i in 20..40 {
        let created = on_a
            .create_press_release(create_request(release(&format!("Process wombat {i}"))))
            .await?
            .into_inner();
        acknowledged.push(created.name);
    }
    let mut a = a;
    a.child.kill()?;
    a.child.wait()?;
    let _ = importing.await?;

    // B keeps serving: every acknowledged release is there, and every
    // release there is whole (its record reads back, its log entry is in
    // a gapless log: a watcher from the beginning sees each once).
    let listed = list_all(&mut on_b).await?;
    let listed_names: BTreeSet<String> = listed.iter().map(|r| r.name.clone()).collect();
    for name in &acknowledged {
        assert!(
            listed_names.contains(name),
            "{name} was acknowledged and is gone"
        );
    }
    for release in &listed {
        let got = on_b
            .get_press_release(GetPressReleaseRequest {
                name: release.name.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(&got, release);
    }
    let mut replay = watch(&mut on_b, beginning()).await?;
    let everything = read_until(&mut replay, Duration::from_secs(30), |w| {
        w.events.len() >= listed.len()
    })
    .await?;
    assert_eq!(everything.events.len(), listed.len());
    let seqs: Vec<u64> = everything.events.iter().map(|e| seq(&e.cursor)).collect();
    assert_eq!(
        seqs,
        (1..=listed.len() as u64).collect::<Vec<_>>(),
        "gapless"
    );
    // The live watcher on B saw the rest once each, after its cursor.
    let live = read_until(&mut stream, Duration::from_secs(30), |w| {
        w.events.len() + history.events.len() >= listed.len()
    })
    .await?;
    assert_eq!(live.events.len() + history.events.len(), listed.len());
    assert!(seq(&live.events[0].cursor) > seq(&cursor_from_b));

    // A restarted replica comes back on the same log.
    let a = replica(&url, &dir, "a")?;
    let mut on_a = PressReleaseServiceClient::new(channel(a.addr).await);
    assert_eq!(list_all(&mut on_a).await?.len(), listed.len());
    search_finds(&mut on_a, "wombat", 40).await?;
    drop(a);
    drop(b);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_commit_lose_nothing_and_duplicate_nothing() -> TestResult {
    let (cluster, url) = database().await?;
    let server = TestServer::start_with(&["--store", &url]).await;
    let admin = Arc::new(cluster.admin().await?);
    let cutting = {
        let admin = Arc::clone(&admin);
        tokio::spawn(async move {
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(60)).await;
                let _ = admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = 'pressroom' AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .await;
            }
        })
    };
    // Each request is retried with its request id until it is answered.
    let mut answered: HashMap<String, String> = HashMap::new();
    let mut refused = 0;
    let mut client = server.client.clone();
    for i in 0..150 {
        let mut request = create_request(release(&format!("Cut platypus {i}")));
        request.request_id = format!("cut-{i}");
        loop {
            match client.create_press_release(request.clone()).await {
                Ok(created) => {
                    answered.insert(request.request_id.clone(), created.into_inner().name);
                    break;
                }
                Err(status) if status.code() == Code::Unavailable => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
    cutting.await?;
    eprintln!("{refused} creates refused with UNAVAILABLE and retried");
    let listed = list_all(&mut client).await?;
    let names: BTreeSet<String> = listed.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        listed.len(),
        150,
        "no duplicate ({refused} refused and retried)"
    );
    assert_eq!(names, answered.values().cloned().collect::<BTreeSet<_>>());
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_the_embargo_scheduler_publish_each_once() -> TestResult {
    let (_cluster, url) = database().await?;
    let dir = temp_dir();
    let a = replica(&url, &dir, "a")?;
    let b = replica(&url, &dir, "b")?;
    let c = replica(&url, &dir, "c")?;
    let mut on_a = PressReleaseServiceClient::new(channel(a.addr).await);
    let mut on_c = PressReleaseServiceClient::new(channel(c.addr).await);
    let mut stream = watch(&mut on_c, beginning()).await?;
    let mut names = BTreeSet::new();
    for i in 0..12 {
        let created = on_a
            .create_press_release(create_request(PressRelease {
                embargo_time: Some(from_now(2)),
                ..release(&format!("Embargoed echidna {i}"))
            }))
            .await?
            .into_inner();
        names.insert(created.name);
    }
    let watched = read_until(&mut stream, Duration::from_secs(30), |w| {
        w.events
            .iter()
            .filter(|e| e.r#type == EventType::Published as i32)
            .count()
            >= 12
    })
    .await?;
    // A moment more, for a second publication if there were one.
    let mut events = watched.events;
    let quiet = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(message)) = tokio::time::timeout_at(quiet, stream.next()).await {
        if let Some(Kind::Event(event)) = message?.kind {
            events.push(event);
        }
    }
    let published: Vec<String> = events
        .iter()
        .filter(|e| e.r#type == EventType::Published as i32)
        .filter_map(|e| e.press_release.as_ref().map(|r| r.name.clone()))
        .collect();
    assert_eq!(published.len(), 12, "{published:?}");
    assert_eq!(published.iter().cloned().collect::<BTreeSet<_>>(), names);
    for release in list_all(&mut on_c).await? {
        assert_eq!(release.revision, 2, "published once: {}", release.name);
    }
    drop((a, b, c));
    Ok(())
}

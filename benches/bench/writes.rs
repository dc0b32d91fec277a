//! `writes`: the write path in-process, without gRPC: releases created one
//! at a time through the domain (`PressReleases::create`: checks, the
//! writer, `Store::apply` and `Store::sync`) on a fresh sled store, then the
//! same number committed straight through `Store::commit` one at a time.
//! It exists for A/B comparisons of the store's shape under callgrind
//! (instruction counts repeat; the clock here does not): run it with
//! `--quick` and without, and the difference is the cost of the extra
//! creates alone (the set-up cancels out). See BENCHMARKS.md.

use std::{sync::Arc, time::Instant};

use pressroom::{
    domain::{PressReleases, name},
    proto::v1::CreatePressReleaseRequest,
    search::SearchIndex,
    store::{Change, NewRelease, SledStore, Store, Writer},
};
use tokio_util::sync::CancellationToken;

use crate::{BenchResult, Plan, corpus::CACHE_BYTES, generate::Generator, server};

pub async fn run(plan: &Plan) -> BenchResult<()> {
    let creates = plan.creates / 4;
    println!(
        "\n== writes: {creates} creates one at a time through the domain and the writer, \
         then {creates} Store::commit calls, in-process on sled"
    );
    let releases = Generator::new(7, "writes").releases(creates * 2);
    let dir = server::temp_dir()?;
    let store_dir = dir.path().join("store");
    let opened =
        tokio::task::spawn_blocking(move || SledStore::open(&store_dir, CACHE_BYTES)).await??;
    let store: Arc<dyn Store> = Arc::new(Arc::new(opened));
    let stop = CancellationToken::new();
    let (writer, writer_task) = Writer::start(Arc::clone(&store), 1024, stop.clone());
    let (search, _) = SearchIndex::open(&dir.path().join("search"), store.store_id(), 0)?;
    let domain = PressReleases::new(Arc::clone(&store), writer, search);

    let started = Instant::now();
    for release in &releases[..creates] {
        domain
            .create(CreatePressReleaseRequest {
                press_release: Some(release.clone()),
                request_id: String::new(),
            })
            .await?;
    }
    let through_domain = started.elapsed();

    let started = Instant::now();
    for release in &releases[creates..] {
        let id = uuid::Uuid::now_v7();
        let mut release = release.clone();
        release.name = name::format(&id);
        store
            .commit(
                vec![Change::Create(NewRelease {
                    id,
                    release,
                    request_id: None,
                    source: None,
                    fingerprint: vec![0; 32],
                })],
                None,
            )
            .await?;
    }
    let through_commit = started.elapsed();
    drop(domain);
    stop.cancel();
    writer_task.await?;
    let per = |elapsed: std::time::Duration| elapsed.as_secs_f64() * 1e6 / creates.max(1) as f64;
    println!(
        "   creates through the domain: {:.0} µs each; Store::commit: {:.0} µs each (log head {})",
        per(through_domain),
        per(through_commit),
        store.log_head()
    );
    Ok(())
}

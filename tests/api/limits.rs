//! Limits: request size, load shedding, watcher limits.

use std::time::{Duration, Instant};

use pressroom::proto::v1::{
    GetPressReleaseRequest, ImportPressReleasesRequest, ListPressReleasesRequest, PressRelease,
    WatchPressReleasesRequest,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, client_with, create_request, release, temp_dir, write_keys,
};

#[tokio::test]
async fn an_oversized_request_is_refused_and_the_server_keeps_serving() -> TestResult {
    let mut server = TestServer::start_with(&["--max-request-bytes", "65536"]).await;
    let big = PressRelease {
        body: "x".repeat(100 * 1024),
        ..release("Too big for this server")
    };
    let status = server
        .client
        .create_press_release(create_request(big))
        .await
        .err()
        .ok_or("accepted")?;
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{status:?}"
    );
    assert!(
        status.message().contains("message length too large") || status.message().contains("size"),
        "{status:?}"
    );
    server
        .client
        .create_press_release(create_request(release("Small enough")))
        .await?;
    Ok(())
}

#[tokio::test]
async fn load_is_shed_when_the_concurrency_limit_is_full() -> TestResult {
    let server = TestServer::start_with(&["--max-concurrent-requests", "1"]).await;
    // An import that stays open holds the only slot.
    let (items, receiver) = tokio::sync::mpsc::channel::<ImportPressReleasesRequest>(1);
    let mut importer = server.new_client().await;
    let import = tokio::spawn(async move {
        importer
            .import_press_releases(ReceiverStream::new(receiver))
            .await
    });
    items
        .send(ImportPressReleasesRequest {
            press_release: Some(release("held")),
            request_id: String::new(),
        })
        .await?;
    let mut client = server.new_client().await;
    let get = GetPressReleaseRequest {
        name: format!("pressReleases/{}", uuid::Uuid::now_v7()),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let shed = loop {
        match client.get_press_release(get.clone()).await {
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return Err(format!("load was not shed: {other:?}").into()),
        }
    };
    assert!(shed.message().contains("limit"), "{shed:?}");
    drop(items);
    let imported = import.await??.into_inner();
    assert_eq!(imported.created, 1);
    let after = client.get_press_release(get).await.err().map(|s| s.code());
    assert_eq!(
        after,
        Some(Code::NotFound),
        "served again once the slot was free"
    );
    Ok(())
}

#[tokio::test]
async fn watcher_limits_hold_per_server_and_per_key() -> TestResult {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(
        dir,
        &[
            "--keys-file",
            &path,
            "--max-watchers",
            "3",
            "--max-watchers-per-key",
            "2",
        ],
    )
    .await;
    let mut reader = client_with(server.addr, Some(&keys.reader)).await;
    let mut publisher = client_with(server.addr, Some(&keys.publisher)).await;
    let watch = WatchPressReleasesRequest::default();
    let first = reader.watch_press_releases(watch.clone()).await?;
    let _second = reader.watch_press_releases(watch.clone()).await?;
    let per_key = reader
        .watch_press_releases(watch.clone())
        .await
        .err()
        .ok_or("per-key limit not held")?;
    assert_eq!(per_key.code(), Code::ResourceExhausted);
    let _third = publisher.watch_press_releases(watch.clone()).await?;
    let mut admin = client_with(server.addr, Some(&keys.admin)).await;
    let full = admin
        .watch_press_releases(watch.clone())
        .await
        .err()
        .ok_or("server limit not held")?;
    assert_eq!(full.code(), Code::ResourceExhausted);

    // A stream that ends frees its place.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match admin.watch_press_releases(watch.clone()).await {
            Ok(_) => break,
            Err(status)
                if status.code() == Code::ResourceExhausted && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => return Err(format!("the place was never freed: {status:?}").into()),
        }
    }
    let _ = reader
        .list_press_releases(ListPressReleasesRequest::default())
        .await?;
    Ok(())
}

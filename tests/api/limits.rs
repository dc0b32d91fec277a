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

/// Subscriptions: at most `--max-subscriptions` kept and
/// `--max-subscription-streams` streams open on one; beyond, RESOURCE_EXHAUSTED,
/// and room comes back when one is deleted or a stream closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_their_streams_are_limited() -> TestResult {
    use pressroom::proto::v1::{
        CreateSubscriptionRequest, DeleteSubscriptionRequest, StreamSubscriptionRequest,
        Subscription, subscription_service_client::SubscriptionServiceClient,
    };
    let server = TestServer::start_on_sled_with(&[
        "--max-subscriptions",
        "2",
        "--max-subscription-streams",
        "1",
    ])
    .await;
    let mut client = SubscriptionServiceClient::new(server.channel().await);
    let new = |id: &str| CreateSubscriptionRequest {
        subscription_id: id.into(),
        subscription: Some(Subscription::default()),
    };
    client.create_subscription(new("one")).await?;
    client.create_subscription(new("two")).await?;
    let refused = client
        .create_subscription(new("three"))
        .await
        .err()
        .ok_or("a third subscription was created")?;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    client
        .delete_subscription(DeleteSubscriptionRequest {
            name: "subscriptions/two".into(),
        })
        .await?;
    client.create_subscription(new("three")).await?;

    let open = |client: &mut SubscriptionServiceClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            let (requests, receiver) = tokio::sync::mpsc::channel(4);
            let _ = requests
                .send(StreamSubscriptionRequest {
                    subscription: "subscriptions/one".into(),
                    max_outstanding_events: 10,
                    ..Default::default()
                })
                .await;
            let stream = client
                .stream_subscription(ReceiverStream::new(receiver))
                .await?
                .into_inner();
            Ok::<_, tonic::Status>((requests, stream))
        }
    };
    let first = open(&mut client).await?;
    let refused = open(&mut client)
        .await
        .err()
        .ok_or("a second stream was opened")?;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Closed, the first stream makes room (the server notices at once or
    // within its one-second tick).
    drop(first);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match open(&mut client).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(format!("no room after a stream closed: {status:?}").into()),
        }
    }
    Ok(())
}

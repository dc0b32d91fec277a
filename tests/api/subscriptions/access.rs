//! Roles (who may create, consume, seek, delete) and bad requests.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_create_and_consume_but_only_the_creator_or_an_admin_deletes() -> TestResult {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(dir, &["--keys-file", &path]).await;
    let connect = |token: Option<String>| {
        let addr = server.addr;
        async move {
            pressroom::client::connect_subscriptions(&pressroom::client::ClientArgs {
                server: format!("http://{addr}"),
                token,
                ca_cert: None,
            })
            .await
        }
    };
    let mut reader = connect(Some(keys.reader.clone())).await?;
    let mut publisher = connect(Some(keys.publisher.clone())).await?;
    let mut admin = connect(Some(keys.admin.clone())).await?;
    let mut nobody = connect(None).await?;

    let refused = nobody
        .list_subscriptions(ListSubscriptionsRequest::default())
        .await
        .err()
        .ok_or("no key, yet listed")?;
    assert_eq!(refused.code(), Code::Unauthenticated);

    let created = reader
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "readers".into(),
            subscription: Some(Subscription::default()),
        })
        .await?
        .into_inner();
    assert_eq!(created.creator, "dashboard");
    // Another key may read and consume it…
    publisher
        .get_subscription(GetSubscriptionRequest {
            name: created.name.clone(),
        })
        .await?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(StreamSubscriptionRequest {
        subscription: created.name.clone(),
        max_outstanding_events: 1,
        ..Default::default()
    })
    .await?;
    let mut stream = publisher
        .stream_subscription(ReceiverStream::new(rx))
        .await?
        .into_inner();
    // …but not seek or delete it.
    let denied = publisher
        .seek_subscription(SeekSubscriptionRequest {
            subscription: created.name.clone(),
            target: Some(Target::Position(StartPosition::Now as i32)),
        })
        .await
        .err()
        .ok_or("seeking another key's subscription")?;
    assert_eq!(denied.code(), Code::PermissionDenied);
    let delete = DeleteSubscriptionRequest {
        name: created.name.clone(),
    };
    let denied = publisher
        .delete_subscription(delete.clone())
        .await
        .err()
        .ok_or("deleting another key's subscription")?;
    assert_eq!(denied.code(), Code::PermissionDenied);
    admin.delete_subscription(delete.clone()).await?;
    // The open stream ends with NOT_FOUND.
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await?
        .ok_or("the stream ended without a status")?
        .err()
        .ok_or("a message, not the end")?;
    assert_eq!(ended.code(), Code::NotFound);
    drop(tx);
    let gone = reader
        .get_subscription(GetSubscriptionRequest {
            name: created.name.clone(),
        })
        .await
        .err()
        .ok_or("still there")?;
    assert_eq!(gone.code(), Code::NotFound);

    // The creator deletes its own.
    reader
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "own".into(),
            subscription: Some(Subscription::default()),
        })
        .await?;
    reader
        .delete_subscription(DeleteSubscriptionRequest {
            name: "subscriptions/own".into(),
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_refused_by_field_and_lists_page() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    let bad = client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "Bad_Id".into(),
            subscription: Some(Subscription {
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: 3_600,
                    nanos: 0,
                }),
                max_deliveries: 5_000,
                query: "-only".into(),
                filter: Some(pressroom::proto::v1::PressReleaseFilter {
                    countries: vec!["ZZ".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .err()
        .ok_or("a bad create was taken")?;
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "subscription_id",
            "subscription.filter.countries[0]",
            "subscription.query",
            "subscription.ack_deadline",
            "subscription.max_deliveries"
        ]
    );
    let bad_start = create(
        &mut client,
        "x",
        10,
        1,
        Some(Start::AfterCursor("junk".into())),
    )
    .await
    .err()
    .ok_or("a bad cursor was taken")?;
    assert_eq!(violated_fields(&bad_start), ["subscription.after_cursor"]);

    for id in ["b", "a", "c"] {
        create(&mut client, id, 10, 1, None).await?;
    }
    let twice = create(&mut client, "a", 10, 1, None)
        .await
        .err()
        .ok_or("created twice")?;
    assert_eq!(twice.code(), Code::AlreadyExists);
    let first = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let second = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await?
        .into_inner();
    let names: Vec<_> = first
        .subscriptions
        .iter()
        .chain(&second.subscriptions)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["subscriptions/a", "subscriptions/b", "subscriptions/c"]
    );
    assert!(second.next_page_token.is_empty());
    let junk = client
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 2,
            page_token: "junk".into(),
        })
        .await
        .err()
        .ok_or("a junk token")?;
    assert_eq!(junk.code(), Code::InvalidArgument);

    let missing = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/nope".into(),
        })
        .await
        .err()
        .ok_or("found nothing")?;
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = client
        .get_subscription(GetSubscriptionRequest {
            name: "nope".into(),
        })
        .await
        .err()
        .ok_or("a malformed name")?;
    assert_eq!(violated_fields(&malformed), ["name"]);

    for (first, code) in [
        (
            StreamSubscriptionRequest {
                subscription: "subscriptions/a".into(),
                max_outstanding_events: 0,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            StreamSubscriptionRequest {
                subscription: String::new(),
                max_outstanding_events: 1,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            StreamSubscriptionRequest {
                subscription: "subscriptions/nope".into(),
                max_outstanding_events: 1,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ] {
        let got = client
            .stream_subscription(tokio_stream::iter(vec![first.clone()]))
            .await
            .err()
            .ok_or("a bad stream was opened")?;
        assert_eq!(got.code(), code, "{first:?}");
    }
    // Junk ack ids are ignored; the stream keeps serving.
    let mut consumer = Consumer::open(&mut client, "a", 1).await?;
    let _ = consumer
        .requests
        .send(StreamSubscriptionRequest {
            ack_ids: vec!["junk".into(), "1.2.3".into()],
            nack_ids: vec!["".into()],
            ..Default::default()
        })
        .await;
    let names = create_releases(&server, "Still serving", 1).await?;
    let got = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(got.iter().map(name_of).collect::<Vec<_>>(), names);
    Ok(())
}

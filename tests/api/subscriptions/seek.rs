//! Seeking a subscription to a cursor, the beginning or now.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_replays_from_a_cursor_or_the_beginning_and_skips_to_now() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(
        &mut client,
        "seeker",
        60,
        5,
        Some(Start::Position(StartPosition::Beginning as i32)),
    )
    .await?;
    let names = create_releases(&server, "Seek", 5).await?;
    let mut consumer = Consumer::open(&mut client, "seeker", 100).await?;
    let events = consumer.take(5, Duration::from_secs(5)).await?;
    assert_eq!(events.iter().map(name_of).collect::<Vec<_>>(), names);
    consumer.ack(&events).await;
    consumer.confirmed(&events).await?;
    let third = events[2]
        .event
        .as_ref()
        .map(|e| e.cursor.clone())
        .unwrap_or_default();

    let seek = |target| SeekSubscriptionRequest {
        subscription: "subscriptions/seeker".into(),
        target: Some(target),
    };
    client
        .seek_subscription(seek(Target::AfterCursor(third)))
        .await?;
    let replayed = consumer.take(2, Duration::from_secs(5)).await?;
    assert_eq!(replayed.iter().map(name_of).collect::<Vec<_>>(), names[3..]);
    // Acks of deliveries from before a seek are ignored.
    consumer.ack(&events).await;

    client
        .seek_subscription(seek(Target::Position(StartPosition::Beginning as i32)))
        .await?;
    let all = consumer.take(5, Duration::from_secs(5)).await?;
    assert_eq!(all.iter().map(name_of).collect::<Vec<_>>(), names);

    let now = client
        .seek_subscription(seek(Target::Position(StartPosition::Now as i32)))
        .await?
        .into_inner();
    assert_eq!(now.backlog, 0);
    assert!(
        consumer
            .take(1, Duration::from_millis(500))
            .await?
            .is_empty(),
        "the backlog is skipped"
    );
    let later = create_releases(&server, "After the seek", 1).await?;
    let next = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(next.iter().map(name_of).collect::<Vec<_>>(), later);

    let bad = client
        .seek_subscription(seek(Target::AfterCursor("nope".into())))
        .await
        .err()
        .ok_or("a bad cursor was taken")?;
    assert_eq!(bad.code(), Code::InvalidArgument);
    Ok(())
}

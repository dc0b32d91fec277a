//! Max deliveries, dead letters and their replay, and the per-subscription
//! metrics.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_becomes_a_dead_letter_and_can_be_replayed() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "poison", 60, 2, None).await?;
    let mut consumer = Consumer::open(&mut client, "poison", 10).await?;
    let names = create_releases(&server, "Maybe poison", 2).await?;
    let poison = names[0].clone();
    let mut attempts = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        let events = consumer.events(Duration::from_millis(300)).await?;
        if events.is_empty() && attempts >= 2 {
            break;
        }
        for event in events {
            if name_of(&event) == poison {
                attempts += 1;
                assert_eq!(event.delivery_attempt, attempts);
                consumer.nack(std::slice::from_ref(&event)).await;
            } else {
                consumer.ack(std::slice::from_ref(&event)).await;
            }
        }
    }
    assert_eq!(
        attempts, 2,
        "delivered max_deliveries times, then set aside"
    );
    let letters = client
        .list_dead_letters(ListDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].press_release, poison);
    assert_eq!(letters[0].delivery_attempts, 2);
    assert_eq!(letters[0].r#type(), EventType::Created);
    let got = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/poison".into(),
        })
        .await?
        .into_inner();
    assert_eq!(got.dead_letter_count, 1);

    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            cursors: vec![letters[0].cursor.clone()],
        })
        .await?
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    let again = consumer.take(1, Duration::from_secs(5)).await?;
    assert_eq!(
        again.iter().map(name_of).collect::<Vec<_>>(),
        std::slice::from_ref(&poison)
    );
    assert_eq!(again[0].delivery_attempt, 1, "a replay counts afresh");
    consumer.ack(&again).await;
    consumer.confirmed(&again).await?;
    let letters = client
        .list_dead_letters(ListDeadLettersRequest {
            subscription: "subscriptions/poison".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters;
    assert!(letters.is_empty(), "{letters:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_redeliveries_and_dead_letters_per_subscription() -> TestResult {
    let server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    let metrics = server.metrics_addr.ok_or("no metrics port")?;
    let mut client = subs(&server).await;
    create(&mut client, "metered", 60, 2, None).await?;
    let mut consumer = Consumer::open(&mut client, "metered", 10).await?;
    create_releases(&server, "Metered", 3).await?;
    let first = consumer.take(3, Duration::from_secs(5)).await?;
    consumer.nack(&first).await;
    let second = consumer.take(3, Duration::from_secs(5)).await?;
    assert!(second.iter().all(|e| e.delivery_attempt == 2));
    consumer.ack(&second[..2]).await;
    consumer.nack(&second[2..]).await;
    consumer.confirmed(&second[..2]).await?;
    // Gauges are refreshed every second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let text = crate::metrics::scrape(metrics).await?;
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{subscription=\"metered\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        value("pressroom_subscription_redeliveries_total"),
        3.0,
        "{text}"
    );
    assert_eq!(
        value("pressroom_subscription_dead_letters_total"),
        1.0,
        "{text}"
    );
    assert_eq!(value("pressroom_subscription_dead_letters"), 1.0, "{text}");
    assert_eq!(value("pressroom_subscription_backlog"), 0.0, "{text}");
    assert_eq!(value("pressroom_subscription_outstanding"), 0.0, "{text}");
    assert!(
        value("pressroom_subscription_oldest_unacked_seconds") >= 0.0,
        "{text}"
    );
    Ok(())
}

//! Restarts and kills: nothing acknowledged comes again, everything
//! unacknowledged does.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_redelivers_everything_unacknowledged_and_nothing_acknowledged() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "durable", 60, 5, None).await?;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    create_releases(&server, "Before restart", 10).await?;
    let events = consumer.take(10, Duration::from_secs(5)).await?;
    assert_eq!(events.len(), 10);
    // Ack every other one, out of order, and wait for the confirmation.
    let (acked, unacked): (Vec<_>, Vec<_>) =
        events.iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let acked: Vec<ReceivedEvent> = acked.into_iter().map(|(_, e)| e.clone()).collect();
    let unacked: Vec<String> = unacked.into_iter().map(|(_, e)| name_of(e)).collect();
    consumer.ack(&acked).await;
    consumer.confirmed(&acked).await?;
    drop(consumer);
    drop(client);

    let server = server.restart().await;
    let mut client = subs(&server).await;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    let again = consumer.take(10, Duration::from_secs(2)).await?;
    let mut got: Vec<String> = again.iter().map(name_of).collect();
    got.sort();
    let mut expected = unacked.clone();
    expected.sort();
    assert_eq!(got, expected, "exactly the unacknowledged ones again");
    assert!(
        again.iter().all(|e| e.delivery_attempt == 2),
        "delivery counts survive: {:?}",
        again.iter().map(|e| e.delivery_attempt).collect::<Vec<_>>()
    );
    consumer.ack(&again).await;
    consumer.confirmed(&again).await?;
    drop(consumer);
    drop(client);

    let server = server.restart().await;
    let mut client = subs(&server).await;
    let mut consumer = Consumer::open(&mut client, "durable", 100).await?;
    let nothing = consumer.take(1, Duration::from_secs(1)).await?;
    assert!(
        nothing.is_empty(),
        "acknowledged events came again: {:?}",
        nothing.iter().map(name_of).collect::<Vec<_>>()
    );
    create_releases(&server, "After restart", 1).await?;
    assert_eq!(consumer.take(1, Duration::from_secs(5)).await?.len(), 1);
    let status = client
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/durable".into(),
        })
        .await?
        .into_inner();
    assert_eq!(status.outstanding_events, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_forgets_no_unacknowledged_event_and_repeats_no_confirmed_ack() -> TestResult
{
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let store = crate::helpers::store_flags(&dir).await;
    let mut flags = vec!["--data-dir", data.as_str()];
    flags.extend(store.iter().map(String::as_str));
    let server = crate::helpers::Binary::serve(&flags)?;
    let channel = |addr: std::net::SocketAddr| async move {
        let channel: Result<Channel, Box<dyn std::error::Error + Send + Sync>> =
            match Channel::from_shared(format!("http://{addr}")) {
                Ok(endpoint) => endpoint.connect().await.map_err(Into::into),
                Err(error) => Err(error.into()),
            };
        channel
    };
    let mut client = SubscriptionServiceClient::new(channel(server.addr).await?);
    create(&mut client, "killed", 60, 5, None).await?;
    let mut consumer = Consumer::open(&mut client, "killed", 400).await?;
    // Writers go on while the consumer acks every other event.
    let writing = {
        let mut releases =
            pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
                channel(server.addr).await?,
            );
        tokio::spawn(async move {
            for i in 0..400 {
                if releases
                    .create_press_release(create_request(release(&format!("Before the kill {i}"))))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut acked = Vec::new();
    let mut turn = 0;
    while consumer.confirmed.len() < 40 {
        let events = consumer.events(Duration::from_secs(10)).await?;
        if events.is_empty() {
            return Err("no events while writers write".into());
        }
        let mine: Vec<ReceivedEvent> = events
            .into_iter()
            .filter(|_| {
                turn += 1;
                turn % 2 == 0
            })
            .collect();
        consumer.ack(&mine).await;
        acked.extend(mine);
    }
    // SIGKILL, mid-run: writes, deliveries and acks in flight.
    drop(server);
    writing.abort();
    let confirmed: HashSet<String> = acked
        .iter()
        .filter(|e| consumer.confirmed.contains(&e.ack_id))
        .map(name_of)
        .collect();
    drop(consumer);
    drop(client);

    let server = crate::helpers::Binary::serve(&flags)?;
    let mut releases =
        pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
            channel(server.addr).await?,
        );
    let all: HashSet<String> = crate::helpers::list_all(&mut releases)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut client = SubscriptionServiceClient::new(channel(server.addr).await?);
    let mut consumer = Consumer::open(&mut client, "killed", 100).await?;
    let mut again = HashSet::new();
    loop {
        let events = consumer.events(Duration::from_secs(2)).await?;
        if events.is_empty() {
            break;
        }
        consumer.ack(&events).await;
        again.extend(events.iter().map(name_of));
    }
    let repeated: Vec<_> = confirmed.intersection(&again).collect();
    assert!(
        repeated.is_empty(),
        "confirmed acks delivered again: {repeated:?}"
    );
    let missing: Vec<_> = all
        .iter()
        .filter(|name| !confirmed.contains(*name) && !again.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} releases neither confirmed nor delivered after the kill: {missing:?}",
        missing.len(),
        all.len()
    );
    assert!(confirmed.len() >= 40 && all.len() > confirmed.len());
    Ok(())
}

//! Invalid field values sent to `pressroom.v1.SubscriptionService` through
//! the generated client: subscription ids and names, filters, queries and
//! starting points (the ones the press-release methods get), ack
//! deadlines, delivery counts, stream limits, junk and foreign ack ids,
//! seeks, page sizes and tokens, and dead-letter cursors. Each is refused
//! with the status a caller can act on — INVALID_ARGUMENT naming the field
//! of their request, NOT_FOUND, FAILED_PRECONDITION — or taken; never an
//! internal error, and the server keeps serving.

use std::time::Duration;

use pressroom::proto::v1::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, GetSubscriptionRequest,
    ListDeadLettersRequest, ListPressReleasesRequest, ListSubscriptionsRequest,
    ReplayDeadLettersRequest, SeekSubscriptionRequest, StartPosition, StreamSubscriptionRequest,
    StreamSubscriptionResponse, Subscription, seek_subscription_request::Target,
    subscription::Start, subscription_service_client::SubscriptionServiceClient,
    watch_press_releases_request,
};
use proptest::test_runner::TestRng;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Code, Status, Streaming, transport::Channel};

use super::{
    Client, Error, expect_invalid, expect_status, lists::bad_filters, lists::odd_page_tokens,
    random_text, search_queries::odd_queries, still_serving, two_releases,
    watch_starts::starting_points,
};
use crate::helpers::{TestResult, TestServer, violated_fields};
use pressroom::{domain::subscription::check_id, proto::v1::PressRelease};

/// A client of the subscription service.
type Subs = SubscriptionServiceClient<Channel>;

/// The subscription every test has, from the beginning of the log (so that
/// it has the two releases' events to deliver).
const NAME: &str = "subscriptions/hostile";

/// [`two_releases`] with a subscription client and [`NAME`].
async fn one_subscription() -> Result<(TestServer, Client, Subs, PressRelease, TestRng), Error> {
    let (server, client, created, rng) = two_releases().await?;
    let mut subs = SubscriptionServiceClient::new(server.channel().await);
    from_the_beginning(&mut subs, "hostile").await?;
    Ok((server, client, subs, created, rng))
}

/// Creates subscription `id`, from the beginning of the log.
async fn from_the_beginning(subs: &mut Subs, id: &str) -> Result<Subscription, Status> {
    let settings = Subscription {
        start: Some(Start::Position(StartPosition::Beginning as i32)),
        ..Default::default()
    };
    let request = CreateSubscriptionRequest {
        subscription_id: id.into(),
        subscription: Some(settings),
    };
    Ok(subs.create_subscription(request).await?.into_inner())
}

/// Creates a subscription with `settings` under a fresh id (counted by
/// `made`) and deletes it again if it was created.
async fn create(
    subs: &mut Subs,
    made: &mut usize,
    settings: Subscription,
) -> Result<Result<tonic::Response<Subscription>, Status>, Status> {
    *made += 1;
    let id = format!("s{made}");
    let result = subs
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: id.clone(),
            subscription: Some(settings),
        })
        .await;
    if result.is_ok() {
        subs.delete_subscription(DeleteSubscriptionRequest {
            name: format!("subscriptions/{id}"),
        })
        .await?;
    }
    Ok(result)
}

/// Opens a stream whose request side is `first` then `rest` as sent.
async fn open(
    subs: &mut Subs,
    first: StreamSubscriptionRequest,
) -> Result<
    (
        mpsc::Sender<StreamSubscriptionRequest>,
        Result<tonic::Response<Streaming<StreamSubscriptionResponse>>, Status>,
    ),
    Error,
> {
    let (sender, receiver) = mpsc::channel(16);
    sender.send(first).await?;
    let opened = subs
        .stream_subscription(ReceiverStream::new(receiver))
        .await;
    Ok((sender, opened))
}

/// The start of `text`, for a message.
fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Seeks [`NAME`] to now: the subscription then, and a cursor of this
/// store past its log.
async fn now_and_ahead(subs: &mut Subs) -> Result<(Subscription, String), Error> {
    let now = subs
        .seek_subscription(SeekSubscriptionRequest {
            subscription: NAME.into(),
            target: Some(Target::Position(StartPosition::Now as i32)),
        })
        .await?
        .into_inner();
    let head = pressroom::feed::cursor::Cursor::decode(&now.acked_cursor)
        .map_err(|_| format!("not a cursor: {:?}", now.acked_cursor))?;
    let ahead = pressroom::feed::cursor::Cursor {
        seq: u64::MAX,
        ..head
    }
    .encode();
    Ok((now, ahead))
}

/// A first stream message naming `subscription`.
fn first(subscription: &str, max: i32) -> StreamSubscriptionRequest {
    StreamSubscriptionRequest {
        subscription: subscription.into(),
        max_outstanding_events: max,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_subscription_ids_and_names_are_refused_by_field() -> TestResult {
    let (_server, mut client, mut subs, created, mut rng) = one_subscription().await?;
    let mut ids: Vec<String> = [
        "",
        "A",
        "Hostile",
        "1a",
        "-a",
        "a-",
        "a_b",
        "a b",
        "a/b",
        "a\0",
        "é",
        "😀",
        "subscriptions/x",
        "pressReleases/x",
        "../x",
    ]
    .iter()
    .map(|id| id.to_string())
    .collect();
    ids.push("a".repeat(64));
    ids.push("a".repeat(100_000));
    ids.extend(
        (0..100)
            .map(|_| random_text(&mut rng, 48))
            .filter(|id| check_id("id", id).is_err()),
    );
    for id in &ids {
        let what = format!("Create with id {:?}", short(id));
        let made = subs
            .create_subscription(CreateSubscriptionRequest {
                subscription_id: id.clone(),
                subscription: Some(Subscription::default()),
            })
            .await;
        expect_invalid(&what, made, "subscription_id")?;
    }
    let without = subs
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "no-body".into(),
            subscription: None,
        })
        .await;
    expect_invalid("Create without a subscription", without, "subscription")?;
    let twice = subs
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: "hostile".into(),
            subscription: Some(Subscription::default()),
        })
        .await;
    expect_status("Create of an existing id", twice, &[Code::AlreadyExists])?;

    let mut names: Vec<String> = vec![
        String::new(),
        "hostile".into(),
        "subscriptions/".into(),
        "subscriptions/HOSTILE".into(),
        format!("{NAME}/extra"),
        format!("{NAME}\0"),
        format!("{NAME}-"),
        format!("/{NAME}"),
        "Subscriptions/hostile".into(),
        "subscriptions/😀".into(),
        "subscriptions/../hostile".into(),
        format!("subscriptions/{}", "a".repeat(64)),
        // A name of another collection.
        created.name.clone(),
        "pressReleases/hostile".into(),
    ];
    names.extend((0..100).map(|_| random_text(&mut rng, 48)));
    for name in &names {
        let what = format!("{:?}", short(name));
        let got = subs
            .get_subscription(GetSubscriptionRequest { name: name.clone() })
            .await;
        expect_invalid(&format!("Get {what}"), got, "name")?;
        let deleted = subs
            .delete_subscription(DeleteSubscriptionRequest { name: name.clone() })
            .await;
        expect_invalid(&format!("Delete {what}"), deleted, "name")?;
        let sought = subs
            .seek_subscription(SeekSubscriptionRequest {
                subscription: name.clone(),
                target: Some(Target::Position(StartPosition::Now as i32)),
            })
            .await;
        expect_invalid(&format!("Seek {what}"), sought, "subscription")?;
        let letters = subs
            .list_dead_letters(ListDeadLettersRequest {
                subscription: name.clone(),
                ..Default::default()
            })
            .await;
        expect_invalid(&format!("ListDeadLetters {what}"), letters, "subscription")?;
        let replayed = subs
            .replay_dead_letters(ReplayDeadLettersRequest {
                subscription: name.clone(),
                cursors: Vec::new(),
            })
            .await;
        expect_invalid(&format!("Replay {what}"), replayed, "subscription")?;
        let (_requests, opened) = open(&mut subs, first(name, 1)).await?;
        expect_invalid(&format!("Stream {what}"), opened, "subscription")?;
    }

    // Well formed, but no such subscription.
    let unknown = "subscriptions/nope".to_string();
    let got = subs
        .get_subscription(GetSubscriptionRequest {
            name: unknown.clone(),
        })
        .await;
    expect_status("Get of an unknown one", got, &[Code::NotFound])?;
    let deleted = subs
        .delete_subscription(DeleteSubscriptionRequest {
            name: unknown.clone(),
        })
        .await;
    expect_status("Delete of an unknown one", deleted, &[Code::NotFound])?;
    let sought = subs
        .seek_subscription(SeekSubscriptionRequest {
            subscription: unknown.clone(),
            target: Some(Target::Position(StartPosition::Now as i32)),
        })
        .await;
    expect_status("Seek of an unknown one", sought, &[Code::NotFound])?;
    let letters = subs
        .list_dead_letters(ListDeadLettersRequest {
            subscription: unknown.clone(),
            ..Default::default()
        })
        .await;
    expect_status(
        "ListDeadLetters of an unknown one",
        letters,
        &[Code::NotFound],
    )?;
    let replayed = subs
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscription: unknown.clone(),
            cursors: Vec::new(),
        })
        .await;
    expect_status("Replay of an unknown one", replayed, &[Code::NotFound])?;
    let (_requests, opened) = open(&mut subs, first(&unknown, 1)).await?;
    expect_status("Stream of an unknown one", opened, &[Code::NotFound])?;

    subs.get_subscription(GetSubscriptionRequest { name: NAME.into() })
        .await?;
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscription_settings_are_refused_by_field() -> TestResult {
    let (_server, mut client, mut subs, created, mut rng) = one_subscription().await?;
    let mut made = 0;
    for filter in bad_filters() {
        let what = format!("Create with {filter:?}");
        let settings = Subscription {
            filter: Some(filter),
            ..Default::default()
        };
        expect_invalid(
            &what,
            create(&mut subs, &mut made, settings).await?,
            "subscription.filter",
        )?;
    }
    for query in odd_queries(&mut rng) {
        let what = format!("Create with query {:?}", short(&query));
        let settings = Subscription {
            query,
            ..Default::default()
        };
        let result = create(&mut subs, &mut made, settings).await?;
        if result.is_ok() {
            continue;
        }
        expect_invalid(&what, result, "subscription.query")?;
    }
    for (what, start, codes) in starting_points(&mut rng) {
        let (start, field) = match start {
            watch_press_releases_request::Start::AfterCursor(c) => {
                (Start::AfterCursor(c), "subscription.after_cursor")
            }
            watch_press_releases_request::Start::Position(p) => {
                (Start::Position(p), "subscription.position")
            }
            watch_press_releases_request::Start::StartTime(t) => {
                (Start::StartTime(t), "subscription.start_time")
            }
        };
        let what = format!("Create starting at {what}");
        let settings = Subscription {
            start: Some(start),
            ..Default::default()
        };
        let result = create(&mut subs, &mut made, settings).await?;
        if codes == [Code::InvalidArgument] {
            expect_invalid(&what, result, field)?;
        } else {
            expect_status(&what, result, codes)?;
        }
    }

    let deadline = |seconds, nanos| Some(pbjson_types::Duration { seconds, nanos });
    let bad_deadlines = [
        deadline(0, 0),
        deadline(0, 999_999_999),
        deadline(601, 0),
        deadline(600, 1),
        deadline(-1, 0),
        deadline(1, -1),
        deadline(1, 1_000_000_000),
        deadline(i64::MAX, 999_999_999),
        deadline(i64::MIN, 0),
        deadline(0, i32::MIN),
    ];
    let mut out_of_range: Vec<(Subscription, &str)> = bad_deadlines
        .into_iter()
        .map(|ack_deadline| {
            let settings = Subscription {
                ack_deadline,
                ..Default::default()
            };
            (settings, "subscription.ack_deadline")
        })
        .collect();
    for max_deliveries in [-1, i32::MIN, 1_001, i32::MAX] {
        let settings = Subscription {
            max_deliveries,
            ..Default::default()
        };
        out_of_range.push((settings, "subscription.max_deliveries"));
    }
    for (settings, field) in out_of_range {
        let what = format!("Create with {settings:?}");
        let result = create(&mut subs, &mut made, settings).await?;
        expect_invalid(&what, result, field)?;
    }
    // The bounds themselves, and output-only fields (ignored).
    for (ack_deadline, max_deliveries) in [(deadline(1, 0), 1), (deadline(600, 0), 1_000)] {
        let settings = Subscription {
            ack_deadline,
            max_deliveries,
            name: "subscriptions/other".into(),
            creator: "\0".into(),
            acked_cursor: "junk".into(),
            outstanding_events: -5,
            backlog: i64::MIN,
            dead_letter_count: -1,
            ..Default::default()
        };
        let result = create(&mut subs, &mut made, settings).await?;
        expect_status("Create at the bounds", result, &[Code::Ok])?;
    }
    // Every violation at once.
    let all = create(
        &mut subs,
        &mut made,
        Subscription {
            query: "\"".into(),
            ack_deadline: deadline(0, 0),
            max_deliveries: -1,
            ..Default::default()
        },
    )
    .await?
    .err()
    .ok_or("three violations were taken")?;
    assert_eq!(
        violated_fields(&all),
        [
            "subscription.query",
            "subscription.ack_deadline",
            "subscription.max_deliveries"
        ]
    );
    subs.get_subscription(GetSubscriptionRequest { name: NAME.into() })
        .await?;
    still_serving(&mut client, &created).await
}

/// The events of the messages that come until `n` have, within 10 s;
/// confirmations on the way are added to `confirmed`.
async fn receive(
    responses: &mut Streaming<StreamSubscriptionResponse>,
    n: usize,
    confirmed: &mut Vec<String>,
) -> Result<Vec<String>, Error> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut ack_ids = Vec::new();
    while ack_ids.len() < n {
        let message = tokio::time::timeout_at(until, responses.next())
            .await
            .map_err(|_| format!("{} of {n} events in 10 s", ack_ids.len()))?
            .ok_or("the stream ended")??;
        confirmed.extend(message.acknowledged_ids);
        ack_ids.extend(message.received_events.into_iter().map(|e| e.ack_id));
    }
    Ok(ack_ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_are_refused_and_junk_acks_ignored() -> TestResult {
    let (server, mut client, mut subs, created, mut rng) = one_subscription().await?;
    for max in [0, -1, i32::MIN, 10_001, i32::MAX] {
        let (_requests, opened) = open(&mut subs, first(NAME, max)).await?;
        let what = format!("Stream with max_outstanding_events {max}");
        expect_invalid(&what, opened, "max_outstanding_events")?;
    }
    let none = subs
        .stream_subscription(tokio_stream::empty::<StreamSubscriptionRequest>())
        .await;
    expect_invalid("Stream without a first message", none, "subscription")?;
    let acks_only = StreamSubscriptionRequest {
        ack_ids: vec!["junk".into()],
        max_outstanding_events: 1,
        ..Default::default()
    };
    let (_requests, opened) = open(&mut subs, acks_only).await?;
    expect_invalid("Stream naming no subscription", opened, "subscription")?;

    // A delivery of another subscription, to ack and nack on this one.
    from_the_beginning(&mut subs, "other").await?;
    let (_other_requests, other) = open(&mut subs, first("subscriptions/other", 1)).await?;
    let mut other = other?.into_inner();
    let foreign = receive(&mut other, 1, &mut Vec::new()).await?;

    let (requests, opened) = open(&mut subs, first(NAME, 10)).await?;
    let mut responses = opened?.into_inner();
    let mut confirmed = Vec::new();
    let real = receive(&mut responses, 2, &mut confirmed).await?;
    let mut junk: Vec<String> = vec![
        String::new(),
        "junk".into(),
        "1.2.3".into(),
        "\0".into(),
        "x".repeat(10_000),
        real[0].chars().rev().collect(),
        format!("{}0", real[0]),
        real[0][..real[0].len() / 2].to_string(),
    ];
    junk.extend(foreign.iter().cloned());
    junk.extend((0..100).map(|_| random_text(&mut rng, 40)));
    junk.retain(|id| !real.contains(id));
    // Junk acks and nacks, and what only a first message may set (ignored
    // later: the subscription, a limit out of range).
    requests
        .send(StreamSubscriptionRequest {
            subscription: "subscriptions/other".into(),
            max_outstanding_events: -1,
            ack_ids: junk.clone(),
            nack_ids: junk.clone(),
        })
        .await?;
    requests
        .send(StreamSubscriptionRequest {
            max_outstanding_events: i32::MAX,
            ..Default::default()
        })
        .await?;
    // The real acks, twice in one message and again in the next.
    let twice = [real.clone(), real.clone()].concat();
    for ack_ids in [twice, real.clone()] {
        requests
            .send(StreamSubscriptionRequest {
                ack_ids,
                ..Default::default()
            })
            .await?;
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while !real.iter().all(|id| confirmed.contains(id)) {
        let message = tokio::time::timeout_at(until, responses.next())
            .await
            .map_err(|_| format!("acks of {real:?} not confirmed in 10 s: {confirmed:?}"))?
            .ok_or("the stream ended")??;
        if !message.received_events.is_empty() {
            return Err(format!("an event delivered twice: {message:?}").into());
        }
        confirmed.extend(message.acknowledged_ids);
    }
    if let Some(id) = confirmed.iter().find(|id| !real.contains(id)) {
        return Err(format!("a junk ack was confirmed: {id:?}").into());
    }
    let state = subs
        .get_subscription(GetSubscriptionRequest { name: NAME.into() })
        .await?
        .into_inner();
    assert_eq!(state.outstanding_events, 0, "{state:?}");
    // The foreign ack did not touch the other subscription's delivery.
    let other_state = subs
        .get_subscription(GetSubscriptionRequest {
            name: "subscriptions/other".into(),
        })
        .await?
        .into_inner();
    assert_eq!(other_state.outstanding_events, 1, "{other_state:?}");
    // The stream still delivers.
    server
        .client
        .clone()
        .create_press_release(crate::helpers::create_request(crate::helpers::release(
            "After the junk",
        )))
        .await?;
    receive(&mut responses, 1, &mut confirmed).await?;
    drop(requests);
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_seeks_are_refused_by_their_own_fields() -> TestResult {
    let (_server, mut client, mut subs, created, mut rng) = one_subscription().await?;
    let seek = |target| SeekSubscriptionRequest {
        subscription: NAME.into(),
        target,
    };
    let untargeted = subs.seek_subscription(seek(None)).await;
    expect_invalid("Seek without a target", untargeted, "target")?;
    for (what, start, codes) in starting_points(&mut rng) {
        let (target, field) = match start {
            watch_press_releases_request::Start::AfterCursor(c) => {
                (Target::AfterCursor(c), "after_cursor")
            }
            watch_press_releases_request::Start::Position(p) => (Target::Position(p), "position"),
            watch_press_releases_request::Start::StartTime(t) => (Target::Time(t), "time"),
        };
        let what = format!("Seek to {what}");
        let sought = subs.seek_subscription(seek(Some(target))).await;
        if codes == [Code::InvalidArgument] {
            expect_invalid(&what, sought, field)?;
        } else {
            expect_status(&what, sought, codes)?;
        }
    }
    // A cursor of this store, past its log.
    let (_, ahead) = now_and_ahead(&mut subs).await?;
    let sought = subs
        .seek_subscription(seek(Some(Target::AfterCursor(ahead.clone()))))
        .await;
    expect_status("Seek past the log", sought, &[Code::FailedPrecondition])?;
    subs.get_subscription(GetSubscriptionRequest { name: NAME.into() })
        .await?;
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pages_and_dead_letter_cursors_are_refused() -> TestResult {
    let (_server, mut client, mut subs, created, mut rng) = one_subscription().await?;
    let (now, ahead) = now_and_ahead(&mut subs).await?;
    // Page sizes and tokens of both lists.
    for id in ["a", "b"] {
        subs.create_subscription(CreateSubscriptionRequest {
            subscription_id: id.into(),
            subscription: Some(Subscription::default()),
        })
        .await?;
    }
    for page_size in [-1, i32::MIN] {
        let listed = subs
            .list_subscriptions(ListSubscriptionsRequest {
                page_size,
                ..Default::default()
            })
            .await;
        expect_invalid("ListSubscriptions of a negative size", listed, "page_size")?;
        let letters = subs
            .list_dead_letters(ListDeadLettersRequest {
                subscription: NAME.into(),
                page_size,
                ..Default::default()
            })
            .await;
        expect_invalid("ListDeadLetters of a negative size", letters, "page_size")?;
    }
    let huge = subs
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: i32::MAX,
            ..Default::default()
        })
        .await;
    expect_status("ListSubscriptions of a huge size", huge, &[Code::Ok])?;
    let huge = subs
        .list_dead_letters(ListDeadLettersRequest {
            subscription: NAME.into(),
            page_size: i32::MAX,
            ..Default::default()
        })
        .await;
    expect_status("ListDeadLetters of a huge size", huge, &[Code::Ok])?;
    let token = subs
        .list_subscriptions(ListSubscriptionsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty(), "three subscriptions make pages of one");
    let release_token = client
        .list_press_releases(ListPressReleasesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .next_page_token;
    let mut tokens = odd_page_tokens(&token, &mut rng);
    tokens.push(release_token.clone());
    for page_token in tokens {
        let what = format!("token {:?}", short(&page_token));
        let listed = subs
            .list_subscriptions(ListSubscriptionsRequest {
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await;
        expect_invalid(&format!("ListSubscriptions {what}"), listed, "page_token")?;
        let letters = subs
            .list_dead_letters(ListDeadLettersRequest {
                subscription: NAME.into(),
                page_token,
                ..Default::default()
            })
            .await;
        expect_invalid(&format!("ListDeadLetters {what}"), letters, "page_token")?;
    }
    // The subscriptions list's own token is not one of dead letters.
    let letters = subs
        .list_dead_letters(ListDeadLettersRequest {
            subscription: NAME.into(),
            page_token: token,
            ..Default::default()
        })
        .await;
    expect_invalid(
        "ListDeadLetters with a subscriptions token",
        letters,
        "page_token",
    )?;

    // Dead-letter cursors: junk is refused by position, a real cursor that
    // names no dead letter replays nothing.
    let foreign = pressroom::feed::cursor::Cursor {
        store_id: uuid::Uuid::new_v4(),
        seq: 1,
    }
    .encode();
    let mut cursors = vec![String::new(), "junk".into(), foreign, release_token];
    cursors.extend((0..50).map(|_| random_text(&mut rng, 40)));
    for cursor in cursors {
        let what = format!("Replay of {:?}", short(&cursor));
        let replayed = subs
            .replay_dead_letters(ReplayDeadLettersRequest {
                subscription: NAME.into(),
                cursors: vec![now.acked_cursor.clone(), cursor],
            })
            .await;
        expect_invalid(&what, replayed, "cursors[1]")?;
    }
    for cursor in [now.acked_cursor.clone(), ahead] {
        let replayed = subs
            .replay_dead_letters(ReplayDeadLettersRequest {
                subscription: NAME.into(),
                cursors: vec![cursor.clone(), cursor],
            })
            .await?
            .into_inner();
        assert_eq!(replayed.replayed, 0, "no dead letters to replay");
    }
    subs.get_subscription(GetSubscriptionRequest { name: NAME.into() })
        .await?;
    still_serving(&mut client, &created).await
}

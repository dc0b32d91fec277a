//! The subscription side of the crash harness: each site has a
//! subscription from the beginning of the log; during a cycle a consumer
//! takes its events and acks a random half of them, noting which acks the
//! server confirmed. After the kill and restart a fresh consumer drains
//! the subscription: an event whose ack was confirmed never comes again,
//! and every event that was delivered and not acked always does — or, when
//! its release changed again later in the log, that later event does (a
//! subscription reading the log again speaks of a release with its latest
//! entry, as a watch does); one acked without a confirmation may or may
//! not.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use pressroom::proto::v1::{
    CreateSubscriptionRequest, StartPosition, StreamSubscriptionRequest,
    StreamSubscriptionResponse, Subscription, subscription::Start,
    subscription_service_client::SubscriptionServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::Streaming;

use super::{Error, Rng, connect};

/// The subscription's id.
const ID: &str = "crash";

/// What the consumers know, by event cursor.
#[derive(Default)]
pub(super) struct Acks {
    /// Events whose ack the server confirmed.
    confirmed: BTreeSet<String>,
    /// Events delivered and not acked: their release and log position.
    held: BTreeMap<String, (String, u64)>,
    /// Acks sent and not confirmed yet: ack id → cursor.
    sent: BTreeMap<String, String>,
}

impl Acks {
    /// Takes one message: confirmations, then events (acking about
    /// `percent` of them); refuses an event whose ack was confirmed.
    fn take(
        &mut self,
        message: StreamSubscriptionResponse,
        rng: &mut Rng,
        percent: u64,
    ) -> Result<Vec<String>, Error> {
        for id in message.acknowledged_ids {
            if let Some(cursor) = self.sent.remove(&id) {
                self.confirmed.insert(cursor);
            }
        }
        let mut acks = Vec::new();
        for received in message.received_events {
            let (cursor, release) = received
                .event
                .map(|e| {
                    (
                        e.cursor,
                        e.press_release.map(|r| r.name).unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            if self.confirmed.contains(&cursor) {
                return Err(
                    format!("event {cursor} came again after its ack was confirmed").into(),
                );
            }
            // It speaks for the events of its release before it.
            let seq = crate::helpers::seq(&cursor);
            self.held
                .retain(|_, (name, held)| *name != release || *held > seq);
            if rng.chance(percent) {
                self.held.remove(&cursor);
                self.sent.insert(received.ack_id.clone(), cursor);
                acks.push(received.ack_id);
            } else {
                self.held.insert(cursor, (release, seq));
            }
        }
        Ok(acks)
    }
}

/// Creates the site's subscription, from the beginning of the log, with a
/// deadline no cycle reaches.
pub(super) async fn create(addr: SocketAddr) -> Result<(), Error> {
    let mut client = SubscriptionServiceClient::new(connect(addr).await?);
    client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: ID.into(),
            subscription: Some(Subscription {
                start: Some(Start::Position(StartPosition::Beginning as i32)),
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: 600,
                    nanos: 0,
                }),
                max_deliveries: 1_000,
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

/// A stream on the subscription, and where its acks go.
struct Stream {
    acks: mpsc::Sender<StreamSubscriptionRequest>,
    responses: Streaming<StreamSubscriptionResponse>,
}

async fn open(addr: SocketAddr) -> Result<Stream, Error> {
    let mut client = SubscriptionServiceClient::new(connect(addr).await?);
    let (acks, requests) = mpsc::channel(64);
    acks.send(StreamSubscriptionRequest {
        subscription: format!("subscriptions/{ID}"),
        max_outstanding_events: 200,
        ..Default::default()
    })
    .await?;
    let responses = client
        .stream_subscription(ReceiverStream::new(requests))
        .await?
        .into_inner();
    Ok(Stream { acks, responses })
}

impl Stream {
    async fn ack(&self, ack_ids: Vec<String>) {
        if !ack_ids.is_empty() {
            let _ = self
                .acks
                .send(StreamSubscriptionRequest {
                    ack_ids,
                    ..Default::default()
                })
                .await;
        }
    }
}

/// Consumes, acking about half, until the server goes away.
pub(super) async fn consume_until_killed(
    addr: SocketAddr,
    acks: Arc<Mutex<Acks>>,
    mut rng: Rng,
) -> Result<(), Error> {
    let Ok(mut stream) = open(addr).await else {
        // Killed before the stream opened.
        return Ok(());
    };
    while let Some(Ok(message)) = stream.responses.next().await {
        let ack_ids = acks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(message, &mut rng, 50)?;
        stream.ack(ack_ids).await;
    }
    Ok(())
}

/// After a restart: drains the subscription, acking everything, until every
/// event held at the kill has come again and every ack is confirmed.
/// Returns how many held events came again.
pub(super) async fn drain(addr: SocketAddr, acks: &mut Acks) -> Result<usize, Error> {
    // Acks in flight at the kill may or may not have been committed.
    acks.sent.clear();
    let held = acks.held.len();
    let mut stream = open(addr).await?;
    let mut rng = Rng(0);
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        if acks.held.is_empty()
            && acks.sent.is_empty()
            && now.duration_since(quiet_since) > Duration::from_secs(1)
        {
            return Ok(held);
        }
        if now > until {
            return Err(format!(
                "after the restart, events delivered and not acked before the kill did not \
                 come again ({} left: {:?}), or acks were not confirmed ({})",
                acks.held.len(),
                acks.held.values().take(5).collect::<Vec<_>>(),
                acks.sent.len()
            )
            .into());
        }
        match tokio::time::timeout(Duration::from_millis(300), stream.responses.next()).await {
            Err(_) => {}
            Ok(None) => return Err("the subscription stream ended".into()),
            Ok(Some(message)) => {
                let message = message?;
                if !message.received_events.is_empty() {
                    quiet_since = tokio::time::Instant::now();
                }
                let ack_ids = acks.take(message, &mut rng, 100)?;
                stream.ack(ack_ids).await;
            }
        }
    }
}

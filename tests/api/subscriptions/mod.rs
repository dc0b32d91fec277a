//! Subscriptions against the real server with real clients: shared
//! consumers, redelivery after a deadline or a lost stream, restarts,
//! per-release order, dead letters, seek, roles and bad requests, the CLI,
//! and replicas sharing a subscription — on either engine
//! (`PRESSROOM_TEST_STORE=postgres` runs them on PostgreSQL). Split by
//! kind: `sharing` (consumers sharing events, order), `restarts`,
//! `dead_letters` (and their metrics), `seek`, `access` (roles, bad
//! requests), `cli`, `replicas` (two `pressroom serve` on one PostgreSQL).

mod access;
mod cli;
mod dead_letters;
mod replicas;
mod restarts;
mod seek;
mod sharing;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use pressroom::proto::v1::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, EventType, GetSubscriptionRequest,
    ListDeadLettersRequest, ListSubscriptionsRequest, PressRelease, ReceivedEvent,
    ReplayDeadLettersRequest, SeekSubscriptionRequest, StartPosition, StreamSubscriptionRequest,
    StreamSubscriptionResponse, Subscription, UpdatePressReleaseRequest,
    seek_subscription_request::Target, subscription::Start,
    subscription_service_client::SubscriptionServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Streaming, transport::Channel};

use crate::helpers::{
    TestResult, TestServer, create_request, release, temp_dir, violated_fields, write_keys,
};

pub(super) type Subs = SubscriptionServiceClient<Channel>;

pub(super) async fn subs(server: &TestServer) -> Subs {
    SubscriptionServiceClient::new(server.channel().await)
}

/// Creates subscription `id` with `ack_deadline_s` and `max_deliveries`.
pub(super) async fn create(
    client: &mut Subs,
    id: &str,
    ack_deadline_s: i64,
    max_deliveries: i32,
    start: Option<Start>,
) -> Result<Subscription, tonic::Status> {
    Ok(client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: id.into(),
            subscription: Some(Subscription {
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: ack_deadline_s,
                    nanos: 0,
                }),
                max_deliveries,
                start,
                ..Default::default()
            }),
        })
        .await?
        .into_inner())
}

/// One StreamSubscription stream.
pub(super) struct Consumer {
    requests: mpsc::Sender<StreamSubscriptionRequest>,
    responses: Streaming<StreamSubscriptionResponse>,
    confirmed: HashSet<String>,
}

impl Consumer {
    async fn open(client: &mut Subs, id: &str, max: i32) -> Result<Self, tonic::Status> {
        let (requests, receiver) = mpsc::channel(1024);
        let _ = requests
            .send(StreamSubscriptionRequest {
                subscription: format!("subscriptions/{id}"),
                max_outstanding_events: max,
                ..Default::default()
            })
            .await;
        let responses = client
            .stream_subscription(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        Ok(Self {
            requests,
            responses,
            confirmed: HashSet::new(),
        })
    }

    /// The events of the next message that has any, within `wait`
    /// (confirmations on the way are noted); empty if none came.
    async fn events(&mut self, wait: Duration) -> Result<Vec<ReceivedEvent>, tonic::Status> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(until, self.responses.next()).await;
            match next {
                Err(_) => return Ok(Vec::new()),
                Ok(None) => return Err(tonic::Status::aborted("the stream ended")),
                Ok(Some(message)) => {
                    let message = message?;
                    self.confirmed.extend(message.acknowledged_ids);
                    if !message.received_events.is_empty() {
                        return Ok(message.received_events);
                    }
                }
            }
        }
    }

    /// Every event that comes until `n` have, or `wait` passes with none.
    async fn take(
        &mut self,
        n: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedEvent>, tonic::Status> {
        let mut out = Vec::new();
        while out.len() < n {
            let events = self.events(wait).await?;
            if events.is_empty() {
                break;
            }
            out.extend(events);
        }
        Ok(out)
    }

    async fn ack(&self, events: &[ReceivedEvent]) {
        let _ = self
            .requests
            .send(StreamSubscriptionRequest {
                ack_ids: events.iter().map(|e| e.ack_id.clone()).collect(),
                ..Default::default()
            })
            .await;
    }

    async fn nack(&self, events: &[ReceivedEvent]) {
        let _ = self
            .requests
            .send(StreamSubscriptionRequest {
                nack_ids: events.iter().map(|e| e.ack_id.clone()).collect(),
                ..Default::default()
            })
            .await;
    }

    /// Waits until the server confirmed every ack of `events`.
    async fn confirmed(&mut self, events: &[ReceivedEvent]) -> TestResult {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while !events.iter().all(|e| self.confirmed.contains(&e.ack_id)) {
            let message = tokio::time::timeout_at(until, self.responses.next())
                .await
                .map_err(|_| "acks were not confirmed within 10 s")?
                .ok_or("the stream ended")??;
            self.confirmed.extend(message.acknowledged_ids);
        }
        Ok(())
    }
}

pub(super) fn name_of(event: &ReceivedEvent) -> String {
    event
        .event
        .as_ref()
        .and_then(|e| e.press_release.as_ref())
        .map(|r| r.name.clone())
        .unwrap_or_default()
}

pub(super) async fn create_releases(
    server: &TestServer,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>, tonic::Status> {
    create_with(server.client.clone(), prefix, n).await
}

/// Creates `n` releases named `{prefix} {i}` through `client`.
pub(super) async fn create_with(
    mut client: pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient<
        Channel,
    >,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>, tonic::Status> {
    let mut names = Vec::new();
    for i in 0..n {
        let created = client
            .create_press_release(create_request(release(&format!("{prefix} {i}"))))
            .await?
            .into_inner();
        names.push(created.name);
    }
    Ok(names)
}

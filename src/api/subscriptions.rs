//! The gRPC adapter of `pressroom.v1.SubscriptionService`: it only
//! translates, to and from [`Subscriptions`].

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
};

use futures_util::stream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::{caller, record_name};
use crate::{
    domain::DomainError,
    feed::Subscriptions,
    proto::{
        v1::{
            CreateSubscriptionRequest, DeleteSubscriptionRequest, GetSubscriptionRequest,
            ListDeadLettersRequest, ListDeadLettersResponse, ListSubscriptionsRequest,
            ListSubscriptionsResponse, ReplayDeadLettersRequest, ReplayDeadLettersResponse,
            SeekSubscriptionRequest, StreamSubscriptionRequest, Subscription,
        },
        // The server sending the response's twin (stored bytes passed
        // through); the same service on the wire.
        wire::{
            StreamSubscriptionResponse,
            server::subscription_service_server::{SubscriptionService, SubscriptionServiceServer},
        },
    },
};

/// The `pressroom.v1.SubscriptionService` implementation.
#[derive(Clone)]
pub struct SubscriptionApi {
    subscriptions: Subscriptions,
}

impl SubscriptionApi {
    /// The service over the feed's subscriptions.
    pub fn new(subscriptions: Subscriptions) -> Self {
        Self { subscriptions }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> SubscriptionServiceServer<Self> {
        SubscriptionServiceServer::new(self)
    }
}

/// The response stream of `StreamSubscription`.
pub type SubscriptionResponseStream =
    Pin<Box<dyn Stream<Item = Result<StreamSubscriptionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SubscriptionService for SubscriptionApi {
    type StreamSubscriptionStream = SubscriptionResponseStream;

    async fn create_subscription(
        &self,
        request: Request<CreateSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = caller(&request)?;
        let created = self
            .subscriptions
            .create(request.into_inner(), &caller)
            .await?;
        record_name(&created.name);
        Ok(Response::new(created))
    }

    async fn get_subscription(
        &self,
        request: Request<GetSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let request = request.into_inner();
        record_name(&request.name);
        Ok(Response::new(self.subscriptions.get(&request.name).await?))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        Ok(Response::new(
            self.subscriptions.list(request.into_inner()).await?,
        ))
    }

    async fn delete_subscription(
        &self,
        request: Request<DeleteSubscriptionRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        record_name(&request.name);
        self.subscriptions.delete(&request.name, &caller).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn stream_subscription(
        &self,
        request: Request<Streaming<StreamSubscriptionRequest>>,
    ) -> Result<Response<SubscriptionResponseStream>, Status> {
        let mut requests = request.into_inner();
        let first = match requests.next().await {
            Some(first) => first?,
            None => {
                return Err(DomainError::invalid(
                    "subscription",
                    "the first request must name the subscription",
                )
                .into());
            }
        };
        record_name(&first.subscription);
        // A broken request stream (a message that does not decode, one too
        // large) ends the stream, its events delivered again, and the
        // caller is told why: its status is the stream's last item. It is
        // noted before the request side ends, so before the events do.
        let broken = Arc::new(Mutex::new(None::<Status>));
        let noted = Arc::clone(&broken);
        let rest = requests.map_while(move |request| match request {
            Ok(request) => Some(request),
            Err(status) => {
                if let Ok(mut slot) = noted.lock() {
                    *slot = Some(status);
                }
                None
            }
        });
        let stream = self.subscriptions.stream(first, rest).await?;
        let why = stream::once(async move { broken.lock().ok().and_then(|mut slot| slot.take()) })
            .filter_map(|status| status.map(Err));
        Ok(Response::new(Box::pin(
            stream.map(|item| item.map_err(Status::from)).chain(why),
        )))
    }

    async fn seek_subscription(
        &self,
        request: Request<SeekSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        record_name(&request.subscription);
        Ok(Response::new(
            self.subscriptions.seek(request, &caller).await?,
        ))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        record_name(&request.subscription);
        Ok(Response::new(
            self.subscriptions.dead_letters(request).await?,
        ))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        let request = request.into_inner();
        record_name(&request.subscription);
        let replayed = self.subscriptions.replay(request).await?;
        Ok(Response::new(ReplayDeadLettersResponse { replayed }))
    }
}

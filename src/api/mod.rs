//! The gRPC adapters. Each handler only translates: it takes the request
//! message, notes the release name on the RPC's span, calls the domain, and
//! turns the answer (or the error, via `status`) into a response.

pub mod auth;
pub mod limits;
mod methods;
pub mod metrics;
mod status;
mod subscriptions;

pub use subscriptions::SubscriptionApi;

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};
use tracing::Span;

use self::status::ApiError;
use crate::{
    domain::{Caller, PressReleases},
    feed::Feed,
    proto::v1::{
        BackupPressReleasesRequest, BackupPressReleasesResponse, CreatePressReleaseRequest,
        DeletePressReleaseRequest, GetPressReleaseRequest, GetPressReleaseStatsRequest,
        GetPressReleaseStatsResponse, ImportError, ImportPressReleasesRequest,
        ImportPressReleasesResponse, ListPressReleasesRequest, ListPressReleasesResponse,
        PressRelease, SearchPressReleasesRequest, SearchPressReleasesResponse,
        UpdatePressReleaseRequest, WatchPressReleasesRequest, WatchPressReleasesResponse,
        press_release_service_server::{PressReleaseService, PressReleaseServiceServer},
    },
};

/// The `pressroom.v1.PressReleaseService` implementation.
#[derive(Clone)]
pub struct PressReleaseApi {
    releases: PressReleases,
    feed: Feed,
}

impl PressReleaseApi {
    /// The service over the domain and the feed.
    pub fn new(releases: PressReleases, feed: Feed) -> Self {
        Self { releases, feed }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> PressReleaseServiceServer<Self> {
        PressReleaseServiceServer::new(self)
    }
}

/// The caller the auth layer found ([`Caller::unauthenticated`] when
/// authentication is off). The layer is in front of every call of this
/// service, so a call without one is refused as a wiring mistake.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::NoCaller.into())
}

/// Notes the release an RPC is about on its span.
fn record_name(name: &str) {
    Span::current().record("name", name);
}

/// The response stream of `BackupPressReleases`.
pub type BackupResponseStream =
    Pin<Box<dyn Stream<Item = Result<BackupPressReleasesResponse, Status>> + Send>>;

/// The response stream of `WatchPressReleases`.
pub type WatchResponseStream =
    Pin<Box<dyn Stream<Item = Result<WatchPressReleasesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PressReleaseService for PressReleaseApi {
    type WatchPressReleasesStream = WatchResponseStream;
    type BackupPressReleasesStream = BackupResponseStream;

    async fn create_press_release(
        &self,
        request: Request<CreatePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        let release = self.releases.create(request.into_inner()).await?;
        record_name(&release.name);
        Ok(Response::new(release))
    }

    async fn get_press_release(
        &self,
        request: Request<GetPressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        record_name(&request.name);
        Ok(Response::new(self.releases.get(request, &caller).await?))
    }

    async fn list_press_releases(
        &self,
        request: Request<ListPressReleasesRequest>,
    ) -> Result<Response<ListPressReleasesResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.releases.list(request.into_inner(), &caller).await?,
        ))
    }

    async fn update_press_release(
        &self,
        request: Request<UpdatePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        let request = request.into_inner();
        if let Some(release) = &request.press_release {
            record_name(&release.name);
        }
        Ok(Response::new(self.releases.update(request).await?))
    }

    async fn delete_press_release(
        &self,
        request: Request<DeletePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        let request = request.into_inner();
        record_name(&request.name);
        Ok(Response::new(self.releases.withdraw(request).await?))
    }

    async fn watch_press_releases(
        &self,
        request: Request<WatchPressReleasesRequest>,
    ) -> Result<Response<WatchResponseStream>, Status> {
        let caller = caller(&request)?;
        let stream = self.feed.watch(request.into_inner(), &caller).await?;
        Ok(Response::new(Box::pin(
            stream.map(|item| item.map_err(Status::from)),
        )))
    }

    async fn import_press_releases(
        &self,
        request: Request<Streaming<ImportPressReleasesRequest>>,
    ) -> Result<Response<ImportPressReleasesResponse>, Status> {
        // A broken request stream ends the import; what was committed stays.
        let broken: Arc<Mutex<Option<Status>>> = Arc::default();
        let noted = Arc::clone(&broken);
        let items = request.into_inner().map_while(move |item| match item {
            Ok(item) => Some(item),
            Err(status) => {
                *noted.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
                None
            }
        });
        let summary = self.releases.import(items).await?;
        if let Some(status) = broken.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(status);
        }
        let failed = summary
            .failed
            .into_iter()
            .map(|(index, error)| {
                let status = Status::from(error);
                ImportError {
                    index,
                    code: status.code() as i32,
                    message: status.message().to_string(),
                }
            })
            .collect();
        Ok(Response::new(ImportPressReleasesResponse {
            created: summary.created,
            duplicates: summary.duplicates,
            updated: summary.updated,
            failed,
        }))
    }

    async fn search_press_releases(
        &self,
        request: Request<SearchPressReleasesRequest>,
    ) -> Result<Response<SearchPressReleasesResponse>, Status> {
        Ok(Response::new(
            self.releases.search(request.into_inner()).await?,
        ))
    }

    async fn get_press_release_stats(
        &self,
        request: Request<GetPressReleaseStatsRequest>,
    ) -> Result<Response<GetPressReleaseStatsResponse>, Status> {
        Ok(Response::new(
            self.releases.stats(request.into_inner()).await?,
        ))
    }

    async fn backup_press_releases(
        &self,
        _request: Request<BackupPressReleasesRequest>,
    ) -> Result<Response<BackupResponseStream>, Status> {
        let chunks = self.releases.backup().await?;
        Ok(Response::new(Box::pin(chunks.map(|chunk| {
            chunk
                .map(|chunk| BackupPressReleasesResponse { chunk })
                .map_err(Status::from)
        }))))
    }
}

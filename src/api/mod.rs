//! The gRPC adapters. Each handler only translates: it takes the request
//! message, notes the release name on the RPC's span, calls the domain, and
//! turns the answer (or the error, via [`status`]) into a response.

mod status;

use tonic::{Request, Response, Status};
use tracing::Span;

use crate::{
    domain::PressReleases,
    proto::v1::{
        CreatePressReleaseRequest, DeletePressReleaseRequest, GetPressReleaseRequest,
        ListPressReleasesRequest, ListPressReleasesResponse, PressRelease,
        UpdatePressReleaseRequest,
        press_release_service_server::{PressReleaseService, PressReleaseServiceServer},
    },
};

/// The `pressroom.v1.PressReleaseService` implementation.
#[derive(Clone)]
pub struct PressReleaseApi {
    releases: PressReleases,
}

impl PressReleaseApi {
    /// The service over the domain.
    pub fn new(releases: PressReleases) -> Self {
        Self { releases }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> PressReleaseServiceServer<Self> {
        PressReleaseServiceServer::new(self)
    }
}

/// Notes the release an RPC is about on its span.
fn record_name(name: &str) {
    Span::current().record("name", name);
}

#[tonic::async_trait]
impl PressReleaseService for PressReleaseApi {
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
        let request = request.into_inner();
        record_name(&request.name);
        Ok(Response::new(self.releases.get(request).await?))
    }

    async fn list_press_releases(
        &self,
        request: Request<ListPressReleasesRequest>,
    ) -> Result<Response<ListPressReleasesResponse>, Status> {
        Ok(Response::new(
            self.releases.list(request.into_inner()).await?,
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
}

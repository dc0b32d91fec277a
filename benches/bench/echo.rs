//! The references on the wire: a tonic server implementing the same
//! generated `PressReleaseService` trait, with the same transport settings
//! as the real server (HTTP/2 keepalive, concurrent-stream limit, request
//! size limit, `TCP_NODELAY`), that answers from memory. `GetPressRelease`
//! returns a clone of one pre-built release; `WatchPressReleases` streams
//! pre-built messages (the very ones a watcher from the beginning gets from
//! the real server); `ListPressReleases` and `SearchPressReleases` return a
//! clone of one pre-built page. Every other method is `UNIMPLEMENTED`. What the echo
//! costs is the transport's limit: the service could go no faster if its
//! own code cost nothing.

use std::{net::SocketAddr, pin::Pin, sync::Arc};

use pressroom::{
    ServeConfig,
    proto::v1::{
        BackupPressReleasesRequest, BackupPressReleasesResponse, CreatePressReleaseRequest,
        DeletePressReleaseRequest, GetPressReleaseRequest, GetPressReleaseStatsRequest,
        GetPressReleaseStatsResponse, ImportPressReleasesRequest, ImportPressReleasesResponse,
        ListPressReleasesRequest, ListPressReleasesResponse, PressRelease,
        SearchPressReleasesRequest, SearchPressReleasesResponse, UpdatePressReleaseRequest,
        WatchPressReleasesRequest, WatchPressReleasesResponse,
        press_release_service_server::{PressReleaseService, PressReleaseServiceServer},
    },
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::Stream;
use tonic::{
    Request, Response, Status, Streaming,
    transport::{Server, server::TcpIncoming},
};

use crate::BenchResult;

/// What the echo answers with.
#[derive(Clone, Default)]
pub struct Echo {
    /// The answer to every `GetPressRelease`.
    pub release: Arc<PressRelease>,
    /// The messages of every `WatchPressReleases`, in order.
    pub stream: Arc<Vec<WatchPressReleasesResponse>>,
    /// The answer to every `ListPressReleases`.
    pub list_page: Arc<ListPressReleasesResponse>,
    /// The answer to every `SearchPressReleases`.
    pub search_page: Arc<SearchPressReleasesResponse>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "the echo server only gets and watches",
    ))
}

#[tonic::async_trait]
impl PressReleaseService for Echo {
    type WatchPressReleasesStream = BoxStream<WatchPressReleasesResponse>;
    type BackupPressReleasesStream = BoxStream<BackupPressReleasesResponse>;

    async fn get_press_release(
        &self,
        _request: Request<GetPressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        Ok(Response::new(PressRelease::clone(&self.release)))
    }

    async fn watch_press_releases(
        &self,
        _request: Request<WatchPressReleasesRequest>,
    ) -> Result<Response<Self::WatchPressReleasesStream>, Status> {
        let messages = Arc::clone(&self.stream);
        let stream = tokio_stream::iter((0..messages.len()).map(move |i| Ok(messages[i].clone())));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create_press_release(
        &self,
        _request: Request<CreatePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        unimplemented()
    }

    async fn list_press_releases(
        &self,
        _request: Request<ListPressReleasesRequest>,
    ) -> Result<Response<ListPressReleasesResponse>, Status> {
        Ok(Response::new(ListPressReleasesResponse::clone(
            &self.list_page,
        )))
    }

    async fn update_press_release(
        &self,
        _request: Request<UpdatePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        unimplemented()
    }

    async fn delete_press_release(
        &self,
        _request: Request<DeletePressReleaseRequest>,
    ) -> Result<Response<PressRelease>, Status> {
        unimplemented()
    }

    async fn import_press_releases(
        &self,
        _request: Request<Streaming<ImportPressReleasesRequest>>,
    ) -> Result<Response<ImportPressReleasesResponse>, Status> {
        unimplemented()
    }

    async fn search_press_releases(
        &self,
        _request: Request<SearchPressReleasesRequest>,
    ) -> Result<Response<SearchPressReleasesResponse>, Status> {
        Ok(Response::new(SearchPressReleasesResponse::clone(
            &self.search_page,
        )))
    }

    async fn get_press_release_stats(
        &self,
        _request: Request<GetPressReleaseStatsRequest>,
    ) -> Result<Response<GetPressReleaseStatsResponse>, Status> {
        unimplemented()
    }

    async fn backup_press_releases(
        &self,
        _request: Request<BackupPressReleasesRequest>,
    ) -> Result<Response<Self::BackupPressReleasesStream>, Status> {
        unimplemented()
    }
}

/// A running echo server.
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl EchoServer {
    /// Serves `echo` on `127.0.0.1:0` with the transport settings of
    /// `config` (those of the real server it stands beside).
    pub async fn start(echo: Echo, config: &ServeConfig) -> BenchResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = Server::builder()
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .max_concurrent_streams(config.max_streams_per_connection)
            .add_service(
                PressReleaseServiceServer::new(echo)
                    .max_decoding_message_size(config.max_request_bytes),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(tokio::spawn(serve)),
        })
    }

    /// Stops the server.
    pub async fn stop(mut self) -> BenchResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

//! Connecting to a server: `--server` (`http://` or `https://`), a bearer
//! token, and for TLS a CA certificate (else the system's roots).

use std::{path::PathBuf, time::Duration};

use tonic::{
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::proto::v1::{
    press_release_service_client::PressReleaseServiceClient,
    subscription_service_client::SubscriptionServiceClient,
};

/// How to reach the server.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The server, `http://host:port` or `https://host:port`.
    #[arg(
        long,
        env = "PRESSROOM_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,

    /// API key, sent as `authorization: Bearer <key>`.
    #[arg(long, env = "PRESSROOM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// CA certificate (PEM) to trust for an `https://` server, instead of
    /// the system's roots.
    #[arg(long, env = "PRESSROOM_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// Why a client verb failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{:?}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    /// The server could not be reached.
    #[error("cannot reach the server")]
    Connect(#[from] tonic::transport::Error),
    /// A local file could not be read or written.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The arguments do not make sense.
    #[error("{0}")]
    Usage(String),
    /// Some of the input was refused (an import with failed items).
    #[error("{0}")]
    Invalid(String),
    /// Anything else (restore, key generation).
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A client of the press-release service.
pub type Client = PressReleaseServiceClient<InterceptedService<Channel, Bearer>>;

/// A client of the subscription service.
pub type SubscriptionClient = SubscriptionServiceClient<InterceptedService<Channel, Bearer>>;

/// Connects to the server.
pub async fn connect(args: &ClientArgs) -> Result<Client, ClientError> {
    let (channel, bearer) = open(args).await?;
    Ok(PressReleaseServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// Connects to the server's subscription service.
pub async fn connect_subscriptions(args: &ClientArgs) -> Result<SubscriptionClient, ClientError> {
    let (channel, bearer) = open(args).await?;
    Ok(SubscriptionServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// A channel to the server and the token to send on it.
async fn open(args: &ClientArgs) -> Result<(Channel, Bearer), ClientError> {
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|_| ClientError::Usage(format!("--server {:?} is not a URL", args.server)))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if args.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &args.ca_cert {
            Some(path) => tls.ca_certificate(Certificate::from_pem(std::fs::read(path).map_err(
                |source| ClientError::File {
                    path: path.clone(),
                    source,
                },
            )?)),
            None => tls.with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls)?;
    }
    let token = match &args.token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse::<AsciiMetadataValue>()
                .map_err(|_| ClientError::Usage("the token must be printable ASCII".into()))?,
        ),
        None => None,
    };
    let channel = endpoint.connect().await?;
    Ok((channel, Bearer(token)))
}

//! Why the server could not start, or stopped with an error.

use std::{net::SocketAddr, path::PathBuf};

use crate::{api_keys::KeysError, config::ConfigError, search::SearchError, store::StoreError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keys file is unusable.
    #[error("the keys file is unusable")]
    Keys(#[from] KeysError),
    /// A TLS file could not be read.
    #[error("cannot read the TLS file {path}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data dir could not be prepared.
    #[error("cannot prepare the data dir {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or flushed.
    #[error("the store in {path} failed")]
    Store {
        /// The sled directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The PostgreSQL store (`--store`) could not be opened.
    #[error("the PostgreSQL store failed")]
    Database(#[source] StoreError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The search index could not be opened or started.
    #[error("the search index failed to start")]
    Search(#[from] SearchError),
    /// Server reflection could not be built from the descriptors.
    #[error("cannot build server reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
}

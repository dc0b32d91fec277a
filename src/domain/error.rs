//! The domain's errors: a small closed set that the API layer maps to gRPC
//! codes in one place (`api::status`).

use crate::{search::SearchError, store::StoreError};

/// One problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, for example `press_release.headline`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is malformed; each violation names a field.
    #[error("the request is invalid: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No such press release (or it was withdrawn).
    #[error("{name} not found")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// Another press release holds the same identity.
    #[error("{message}")]
    AlreadyExists {
        /// The existing press release.
        name: String,
        /// What clashed.
        message: String,
    },
    /// A concurrent change won: the etag sent is not the current one.
    #[error("{0}")]
    Aborted(String),
    /// The change is not allowed in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's role does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A limit was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Try again later (shutting down, or refusing writes).
    #[error("{0}")]
    Unavailable(String),
    /// A fault in the server; the cause is logged, never shown to callers.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    /// An invalid-argument error about one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }
}

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Closed => Self::Unavailable("the server is shutting down".into()),
            StoreError::Poisoned => {
                Self::Unavailable("the server cannot write at the moment; see its log".into())
            }
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                Self::Unavailable("the store's database is unavailable; retry".into())
            }
            StoreError::Unsupported(message) => Self::FailedPrecondition(message),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<SearchError> for DomainError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::NotReady { .. } => Self::Unavailable(error.to_string()),
            SearchError::Query(e) => Self::invalid("query", e.to_string()),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl DomainError {
    /// An internal error from a task that panicked or was cancelled.
    pub fn from_join(error: tokio::task::JoinError) -> Self {
        Self::Internal(Box::new(error))
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

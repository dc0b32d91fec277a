//! The one place where errors become gRPC statuses: the domain's
//! [`DomainError`], and the API layer's own [`ApiError`] (calls the layers in
//! front of the service refuse before a handler runs). The codes are a small
//! closed set; invalid arguments carry a `google.rpc.BadRequest` naming each
//! field, missing or clashing releases a `google.rpc.ResourceInfo`. Internal
//! errors are logged here with their whole cause chain and reach the caller
//! only as a generic message.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use super::limits::Refusal;
use crate::{
    domain::{DomainError, Role},
    telemetry,
    text::cut,
};

const RESOURCE_TYPE: &str = "pressroom.v1.PressRelease";
const SUBSCRIPTION_TYPE: &str = "pressroom.v1.Subscription";
/// Most field violations sent back; the rest are counted. Statuses travel
/// in HTTP/2 trailers, and clients drop a connection whose trailers pass
/// about 16 KiB.
const MAX_VIOLATIONS: usize = 20;
/// Longest status message sent back, in characters.
const MAX_MESSAGE_CHARS: usize = 1_024;

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Self {
        let message = cut(&error.to_string(), MAX_MESSAGE_CHARS);
        match error {
            DomainError::InvalidArgument(violations) => {
                let total = violations.len();
                let mut violations: Vec<FieldViolation> = violations
                    .into_iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| FieldViolation::new(cut(&v.field, 200), cut(&v.description, 200)))
                    .collect();
                if total > MAX_VIOLATIONS {
                    violations.push(FieldViolation::new(
                        "",
                        format!("and {} more problems", total - MAX_VIOLATIONS),
                    ));
                }
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            DomainError::NotFound { name } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(resource_type(&name), name, "", "not found"),
            ),
            DomainError::AlreadyExists { name, .. } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_resource_info(resource_type(&name), name, "", "already exists"),
            ),
            DomainError::Aborted(_) => Status::aborted(message),
            DomainError::FailedPrecondition(_) => Status::failed_precondition(message),
            DomainError::PermissionDenied(_) => Status::permission_denied(message),
            DomainError::ResourceExhausted(_) => Status::resource_exhausted(message),
            DomainError::Unavailable(_) => Status::unavailable(message),
            DomainError::Internal(cause) => internal(&*cause),
        }
    }
}

/// The resource type a name is of.
fn resource_type(name: &str) -> &'static str {
    if name.starts_with(crate::domain::subscription::PREFIX) {
        SUBSCRIPTION_TYPE
    } else {
        RESOURCE_TYPE
    }
}

/// Why the API layer itself failed a call: authentication, roles and
/// limits, in front of the service.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key was sent.
    #[error("send an API key as `authorization: Bearer <key>`")]
    NoKey,
    /// The key sent is not in the keys file.
    #[error("the API key is not valid")]
    UnknownKey,
    /// The key's role is too small for the method.
    #[error("{method} needs the {required} role; the key {key:?} has {role}")]
    RoleTooSmall {
        /// The method called.
        method: &'static str,
        /// The least role it needs.
        required: Role,
        /// The key's name.
        key: String,
        /// The key's role.
        role: Role,
    },
    /// Too many calls in flight, on the server or for the caller's key.
    #[error(transparent)]
    Overloaded(#[from] Refusal),
    /// A unary call ran past its deadline.
    #[error("the call did not finish within {0:?}")]
    DeadlineExceeded(Duration),
    /// A handler found no caller: the auth layer is not in front of it.
    #[error("no caller on the request: the auth layer is not installed")]
    NoCaller,
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error {
            ApiError::NoKey | ApiError::UnknownKey => Status::unauthenticated(message),
            ApiError::RoleTooSmall { .. } => Status::permission_denied(message),
            ApiError::Overloaded(_) => Status::resource_exhausted(message),
            ApiError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            ApiError::NoCaller => internal(&error),
        }
    }
}

/// Logs an internal error with its cause chain; the caller gets a generic
/// message.
fn internal(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %telemetry::chain(cause), "internal error");
    Status::internal("internal error; the server's log has the details")
}

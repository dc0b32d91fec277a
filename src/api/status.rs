//! The one place where errors become gRPC statuses. The codes are a small
//! closed set; invalid arguments carry a `google.rpc.BadRequest` naming each
//! field, missing or clashing releases a `google.rpc.ResourceInfo`. Internal
//! errors are logged here with their whole cause chain and reach the caller
//! only as a generic message.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{domain::DomainError, telemetry, text::cut};

const RESOURCE_TYPE: &str = "pressroom.v1.PressRelease";
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
                ErrorDetails::with_resource_info(RESOURCE_TYPE, name, "", "not found"),
            ),
            DomainError::AlreadyExists { name, .. } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_resource_info(RESOURCE_TYPE, name, "", "already exists"),
            ),
            DomainError::Aborted(_) => Status::aborted(message),
            DomainError::FailedPrecondition(_) => Status::failed_precondition(message),
            DomainError::PermissionDenied(_) => Status::permission_denied(message),
            DomainError::ResourceExhausted(_) => Status::resource_exhausted(message),
            DomainError::Unavailable(_) => Status::unavailable(message),
            DomainError::Internal(cause) => {
                tracing::error!(error = %telemetry::chain(&*cause), "internal error");
                Status::internal("internal error; the server's log has the details")
            }
        }
    }
}

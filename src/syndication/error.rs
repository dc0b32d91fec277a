//! The one place where a feed request's errors become HTTP answers. The
//! domain's errors go through the same `Status` the gRPC API sends, so a bad
//! filter is a 400 carrying the very message `ListPressReleases` would
//! carry; the code then maps to HTTP as gRPC gateways map it. Answers are
//! `application/problem+json` (RFC 9457) with the gRPC code's name beside
//! the message, never cached. Internal errors are logged with their cause
//! chain (by the `Status` conversion, or here) and reach the caller only as
//! a generic message.

use std::time::Duration;

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::Code;

use crate::{api::limits::Refusal, domain::DomainError, telemetry};

/// Why a feed request was not answered with a feed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The path names no feed.
    #[error("there is no feed at {0}; the feeds are /feeds/rss, /feeds/atom and /feeds/json")]
    NoSuchFeed(String),
    /// A query parameter is unknown, repeated or malformed.
    #[error("query parameter `{name}` {problem}")]
    Parameter {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The domain refused or failed the request.
    #[error(transparent)]
    Domain(DomainError),
    /// No API key was sent.
    #[error("send an API key as `Authorization: Bearer <key>` or as `?key=<key>`")]
    NoKey,
    /// The key sent is not in the keys file.
    #[error("the API key is not valid")]
    UnknownKey,
    /// Too many calls in flight, on the server or for the key.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The request ran past its deadline.
    #[error("the request did not finish within {0:?}")]
    DeadlineExceeded(Duration),
    /// The feed could not be written.
    #[error("the feed could not be written")]
    Render(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl FeedError {
    /// The error for a parameter feeds do not take.
    pub fn unknown_parameter(name: &str) -> Self {
        Self::Parameter {
            name: crate::text::cut(name, 64),
            problem: "is not a feed parameter; they are channel, country, language, issuer, \
                      subject, industry, ticker (each repeatable), q, limit and key"
                .into(),
        }
    }

    /// The gRPC code this error has (or would have) on the gRPC API, and
    /// the message the caller sees.
    fn code_and_message(self) -> (Code, String) {
        let message = self.to_string();
        match self {
            Self::NoSuchFeed(_) => (Code::NotFound, message),
            Self::Parameter { .. } => (Code::InvalidArgument, message),
            Self::Domain(error) => {
                let status = tonic::Status::from(error);
                (status.code(), status.message().to_string())
            }
            Self::NoKey | Self::UnknownKey => (Code::Unauthenticated, message),
            Self::Refused(_) => (Code::ResourceExhausted, message),
            Self::DeadlineExceeded(_) => (Code::DeadlineExceeded, message),
            Self::Render(_) => {
                tracing::error!(error = %telemetry::chain(&self), "internal error");
                (
                    Code::Internal,
                    "internal error; the server's log has the details".into(),
                )
            }
        }
    }
}

/// The HTTP status for a gRPC code, as gRPC gateways map them.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An RFC 9457 problem document.
#[derive(Serialize)]
struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    /// The gRPC code the same request gets over gRPC, e.g. `INVALID_ARGUMENT`.
    code: String,
}

impl IntoResponse for FeedError {
    fn into_response(self) -> Response {
        let (code, detail) = self.code_and_message();
        let status = http_status(code);
        let problem = Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code: code_name(code),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match code {
            Code::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pressroom\""),
                );
            }
            Code::ResourceExhausted | Code::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// The canonical name of a gRPC code, e.g. `INVALID_ARGUMENT`.
fn code_name(code: Code) -> String {
    // `Code`'s Debug is `InvalidArgument`; the canonical names are upper
    // snake case.
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_canonical_names_and_statuses() {
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::Unauthenticated), 401);
    }

    #[test]
    fn a_bad_filter_carries_the_message_grpc_sends() {
        let error = || DomainError::invalid("filter.countries[0]", "not a country");
        let grpc = tonic::Status::from(error());
        let (code, message) = FeedError::Domain(error()).code_and_message();
        assert_eq!((code, message.as_str()), (grpc.code(), grpc.message()));
        assert_eq!(http_status(code), StatusCode::BAD_REQUEST);
    }
}

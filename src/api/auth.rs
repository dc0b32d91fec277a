//! Authentication and roles, in front of every service: the API key comes
//! as `authorization: Bearer <key>`; no key or an unknown one is
//! UNAUTHENTICATED, a known key whose role is too small PERMISSION_DENIED.
//! Health and reflection stay open. The caller's key name goes on the RPC's
//! span (the key itself is never logged) and into the request's extensions
//! for the handlers.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use super::{methods::Method, status::ApiError};
use crate::{api_keys::Keys, domain::Caller};

/// Adds authentication; `None` keys means authentication is off and every
/// caller may do everything.
#[derive(Clone)]
pub struct AuthLayer {
    keys: Option<Keys>,
}

impl AuthLayer {
    /// Authenticates against `keys` (or not at all).
    pub fn new(keys: Option<Keys>) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// The authenticating service.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    keys: Option<Keys>,
}

impl<S> Auth<S> {
    fn check(&self, request: &Request<Body>, method: &Method) -> Result<Option<Caller>, ApiError> {
        let Some(required) = method.role else {
            return Ok(None);
        };
        let Some(keys) = &self.keys else {
            return Ok(Some(Caller::unauthenticated()));
        };
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::NoKey)?;
        let caller = keys
            .current()
            .authenticate(presented)
            .ok_or(ApiError::UnknownKey)?;
        tracing::Span::current().record("caller", caller.name.as_str());
        if caller.role < required {
            return Err(ApiError::RoleTooSmall {
                method: method.name,
                required,
                key: caller.name,
                role: caller.role,
            });
        }
        Ok(Some(caller))
    }
}

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let method = Method::of(&request);
        match self.check(&request, &method) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Err(refused) => {
                let status = Status::from(refused);
                tracing::debug!(code = ?status.code(), method = %method.name, "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

//! Resource limits in front of the press-release service and the HTTP
//! feeds: a global limit on calls in flight that sheds load at once
//! (RESOURCE_EXHAUSTED, never an unbounded queue), a limit per API key of
//! the same kind (when keys are on, so that one key cannot take every
//! slot), and a deadline on unary calls (the server's, or the client's
//! `grpc-timeout` when that is shorter). Watch and backup streams are
//! long-lived by design and left to their own limits. The gRPC layer and
//! the feeds share one [`LimitsLayer`], so the limits count both.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use super::{
    methods::{Kind, Method},
    status::ApiError,
};
use crate::domain::Caller;

/// Applies the limits.
#[derive(Clone)]
pub struct LimitsLayer {
    in_flight: Arc<Semaphore>,
    limit: usize,
    per_key: Option<Arc<KeySlots>>,
    unary_timeout: Duration,
}

/// Calls in flight per API key.
struct KeySlots {
    limit: usize,
    taken: Mutex<HashMap<String, usize>>,
}

/// A call's place among the calls in flight, given back when dropped.
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    _key: Option<KeySlot>,
}

/// One key's slot, given back when dropped.
struct KeySlot {
    slots: Arc<KeySlots>,
    key: String,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut taken = self
            .slots
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = taken.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                taken.remove(&self.key);
            }
        }
    }
}

/// Why a call was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The server is at its limit.
    #[error("the server is at its limit of {limit} calls in flight; retry with backoff")]
    Server {
        /// The limit.
        limit: usize,
    },
    /// The caller's key is at its limit.
    #[error("the API key {key:?} is at its limit of {limit} calls in flight; retry with backoff")]
    Key {
        /// The key's name.
        key: String,
        /// The limit.
        limit: usize,
    },
}

impl LimitsLayer {
    /// At most `max_in_flight` calls at once; unary calls end after
    /// `unary_timeout`.
    pub fn new(max_in_flight: usize, unary_timeout: Duration) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            limit: max_in_flight,
            per_key: None,
            unary_timeout,
        }
    }

    /// Also at most `max_per_key` calls at once for one API key.
    pub fn per_key(mut self, max_per_key: usize) -> Self {
        self.per_key = Some(Arc::new(KeySlots {
            limit: max_per_key,
            taken: Mutex::default(),
        }));
        self
    }

    /// How long a unary call (or a feed request) may take.
    pub fn timeout(&self) -> Duration {
        self.unary_timeout
    }

    /// Admits a call of `caller` (`None`: no caller known yet) if the
    /// server and the caller's key have a slot free; refuses it at once
    /// otherwise.
    pub fn admit(&self, caller: Option<&Caller>) -> Result<Admission, Refusal> {
        let slot = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| Refusal::Server { limit: self.limit })?;
        let key = match (&self.per_key, caller) {
            (Some(slots), Some(caller)) => {
                let mut taken = slots.taken.lock().unwrap_or_else(PoisonError::into_inner);
                let count = taken.entry(caller.name.clone()).or_default();
                if *count >= slots.limit {
                    return Err(Refusal::Key {
                        key: caller.name.clone(),
                        limit: slots.limit,
                    });
                }
                *count += 1;
                Some(KeySlot {
                    slots: Arc::clone(slots),
                    key: caller.name.clone(),
                })
            }
            _ => None,
        };
        Ok(Admission {
            _slot: slot,
            _key: key,
        })
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Limits<S> {
        Limits {
            inner,
            layer: self.clone(),
        }
    }
}

/// The limiting service.
#[derive(Clone)]
pub struct Limits<S> {
    inner: S,
    layer: LimitsLayer,
}

impl<S> Service<Request<Body>> for Limits<S>
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

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = Method::of(&request);
        if !method.is_pressroom() || method.is_long_lived() {
            return Box::pin(self.inner.call(request));
        }
        let permit = match self.layer.admit(request.extensions().get::<Caller>()) {
            Ok(permit) => permit,
            Err(refusal) => {
                return Box::pin(
                    async move { Ok(Status::from(ApiError::from(refusal)).into_http()) },
                );
            }
        };
        let deadline = (method.kind == Kind::Unary).then(|| {
            client_timeout(&request).map_or(self.layer.unary_timeout, |t| {
                t.min(self.layer.unary_timeout)
            })
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let _permit = permit;
            match deadline {
                Some(deadline) => match tokio::time::timeout(deadline, call).await {
                    Ok(response) => response,
                    Err(_) => Ok(Status::from(ApiError::DeadlineExceeded(deadline)).into_http()),
                },
                None => call.await,
            }
        })
    }
}

/// The client's `grpc-timeout` header, e.g. `100m` (milliseconds).
fn client_timeout(request: &Request<Body>) -> Option<Duration> {
    let value = request.headers().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;

    async fn slow(_request: Request<Body>) -> Result<Response<Body>, Infallible> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Response::new(Body::empty()))
    }

    fn status(response: &Response<Body>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn unary_calls_end_at_the_deadline_and_streams_do_not() -> Result<(), Infallible> {
        let layer = LimitsLayer::new(8, Duration::from_millis(50));
        let call = |path: &str| {
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .unwrap_or_default()
        };
        let unary = layer
            .layer(tower::service_fn(slow))
            .oneshot(call("/pressroom.v1.PressReleaseService/GetPressRelease"))
            .await?;
        assert_eq!(status(&unary), Some("4"), "DEADLINE_EXCEEDED");
        let stream = layer
            .layer(tower::service_fn(slow))
            .oneshot(call("/pressroom.v1.PressReleaseService/WatchPressReleases"))
            .await?;
        assert_eq!(status(&stream), None, "a watch is not cut short");

        // A shorter client deadline wins.
        let layer = LimitsLayer::new(8, Duration::from_secs(30));
        let mut request = call("/pressroom.v1.PressReleaseService/ListPressReleases");
        request
            .headers_mut()
            .insert("grpc-timeout", http::HeaderValue::from_static("20m"));
        let started = std::time::Instant::now();
        let response = layer
            .layer(tower::service_fn(slow))
            .oneshot(request)
            .await?;
        assert_eq!(status(&response), Some("4"));
        assert!(started.elapsed() < Duration::from_millis(250));
        Ok(())
    }

    #[test]
    fn one_key_cannot_take_every_slot() {
        let limits = LimitsLayer::new(4, Duration::from_secs(30)).per_key(2);
        let caller = |name: &str| Caller {
            name: name.into(),
            role: crate::domain::Role::Reader,
        };
        let (busy, other) = (caller("busy"), caller("other"));
        let first = limits.admit(Some(&busy));
        let second = limits.admit(Some(&busy));
        assert!(first.is_ok() && second.is_ok());
        assert!(matches!(
            limits.admit(Some(&busy)),
            Err(Refusal::Key { limit: 2, .. })
        ));
        let third = limits.admit(Some(&other));
        assert!(third.is_ok(), "another key still gets in");
        drop(first);
        let again = limits.admit(Some(&busy));
        assert!(again.is_ok(), "a slot given back is free again");
        let fourth = limits.admit(Some(&other));
        assert!(fourth.is_ok());
        assert!(matches!(
            limits.admit(None),
            Err(Refusal::Server { limit: 4 })
        ));
    }

    #[tokio::test]
    async fn calls_past_the_limit_are_shed_at_once() -> Result<(), Infallible> {
        let layer = LimitsLayer::new(1, Duration::from_secs(30));
        let call = || {
            Request::builder()
                .uri("/pressroom.v1.PressReleaseService/GetPressRelease")
                .body(Body::empty())
                .unwrap_or_default()
        };
        let first = tokio::spawn(layer.layer(tower::service_fn(slow)).oneshot(call()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = layer.layer(tower::service_fn(slow)).oneshot(call()).await?;
        assert_eq!(status(&second), Some("8"), "RESOURCE_EXHAUSTED");
        let first = first.await.unwrap_or_else(|e| panic!("{e}"))?;
        assert_eq!(status(&first), None);
        Ok(())
    }
}

//! Syndication for consumers that do not speak gRPC: RSS 2.0 (with
//! `content:encoded`), Atom (RFC 4287) and JSON Feed 1.1, served over HTTP
//! at `GET /feeds/{rss|atom|json}` (and `HEAD`), newest first, narrowed by
//! the list filter and an optional search query given as query parameters.
//!
//! A request passes, in order: the format and parameters are read
//! ([`request`]); the caller is authenticated with the API keys
//! ([`auth`]) and admitted by the limits the gRPC calls share; the filter
//! and query are checked; the validators (ETag from the change-log position
//! and the request, Last-Modified) are worked out without reading a record,
//! and a request whose `If-None-Match` / `If-Modified-Since` they satisfy is
//! answered 304 there ([`validators`]). Otherwise the releases come from
//! the domain's `List` (or `Search`, newest first, for `q`), exactly as the
//! gRPC API answers the same filter, are mapped once ([`entry`]) and
//! written by the format's writer ([`rss`], [`atom`], [`json_feed`]) on the
//! blocking pool. Errors become HTTP answers in one place ([`error`]);
//! every request is counted ([`metrics`]) and traced (the key never is).
//!
//! This module never reads the store: it asks [`PressReleases`], which
//! never shows embargoed or withdrawn releases in a list or search.

mod atom;
mod auth;
mod entry;
mod error;
mod json_feed;
mod metrics;
mod request;
mod rss;
mod validators;

use std::{cmp::Ordering, future::Future, sync::Arc, time::Instant};

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tracing::Instrument as _;
use url::Url;
use uuid::Uuid;

pub use self::metrics::SyndicationMetrics;
use self::{
    entry::{Entry, FeedInfo},
    error::FeedError,
    request::{FeedRequest, Format, Params},
    validators::{ChangeClock, Validators},
};
use crate::{
    api::limits::LimitsLayer,
    api_keys::Keys,
    domain::{Caller, MAX_SEARCH_PAGE_SIZE, PressReleases, ReadPositions},
    proto::v1::{ListPressReleasesRequest, PressRelease, SearchPressReleasesRequest},
};

/// What the feeds say generated them.
const GENERATOR: &str = "Pressroom";

/// Bumped whenever what a feed shows for the same releases changes, so
/// that validators handed out by an older version no longer match.
const RENDERING_VERSION: &str = "1";

/// How the feeds are served.
#[derive(Clone, Debug)]
pub struct SyndicationSettings {
    /// Items link to this URL followed by the release's name.
    pub link_base: Option<Url>,
    /// `Cache-Control: max-age`, in seconds (0: `no-cache`).
    pub max_age: u64,
    /// The store, whose id goes into the validators.
    pub store_id: Uuid,
}

/// The feeds service: cheap to clone.
#[derive(Clone)]
pub struct Syndication {
    shared: Arc<Shared>,
}

struct Shared {
    releases: PressReleases,
    keys: Option<Keys>,
    limits: LimitsLayer,
    metrics: SyndicationMetrics,
    link_base: Option<Url>,
    cache_control: HeaderValue,
    store_id: String,
    /// When each durable head was first seen (feeds without `q`).
    listed: ChangeClock<u64>,
    /// When each pair of positions was first seen (feeds with `q`).
    searched: ChangeClock<Positions>,
}

impl Syndication {
    /// The feeds over `releases`, authenticating with `keys` (none: off),
    /// admitting requests through `limits` (shared with gRPC calls).
    pub fn new(
        releases: PressReleases,
        keys: Option<Keys>,
        limits: LimitsLayer,
        metrics: SyndicationMetrics,
        settings: SyndicationSettings,
    ) -> Self {
        let cache_control = match settings.max_age {
            0 => HeaderValue::from_static("private, no-cache"),
            seconds => HeaderValue::try_from(format!("private, max-age={seconds}"))
                .unwrap_or_else(|_| HeaderValue::from_static("private, no-cache")),
        };
        let link_base = settings.link_base.map(|mut base| {
            if !base.path().ends_with('/') {
                let path = format!("{}/", base.path());
                base.set_path(&path);
            }
            base
        });
        Self {
            shared: Arc::new(Shared {
                releases,
                keys,
                limits,
                metrics,
                link_base,
                cache_control,
                store_id: settings.store_id.to_string(),
                listed: ChangeClock::new(),
                searched: ChangeClock::new(),
            }),
        }
    }

    /// The routes: `/feeds/{format}`, and a 404 in the same shape for
    /// anything else; answers are gzipped for clients that accept it.
    pub fn router(self) -> Router {
        let fallback = self.clone();
        Router::new()
            .route("/feeds/{format}", get(feed))
            .fallback(move |uri: Uri| {
                let feeds = fallback.clone();
                async move {
                    let response =
                        FeedError::NoSuchFeed(crate::text::cut(uri.path(), 200)).into_response();
                    feeds
                        .shared
                        .metrics
                        .record(None, response.status(), Default::default());
                    response
                }
            })
            .with_state(self)
            .layer(CompressionLayer::new())
    }

    /// Serves the feeds on `listener` until `shutdown` completes; requests
    /// in flight then finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Answers one feed request.
    async fn answer(
        &self,
        format: Format,
        raw_query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Response, FeedError> {
        let shared = &self.shared;
        let params = Params::parse(raw_query);
        let caller = auth::authenticate(shared.keys.as_ref(), headers, params.key())?;
        tracing::Span::current().record("caller", caller.name.as_str());
        let _admitted = shared.limits.admit(Some(&caller))?;
        let request = FeedRequest::new(format, &params)?;
        let self_url = self_url(headers, &request);

        // The validators first: a 304 reads no record.
        let positions = shared.releases.read_positions();
        let (position, stamp) = match request.text {
            None => (
                positions.durable.to_string(),
                shared.listed.stamp(positions.durable),
            ),
            Some(_) => (
                format!("{}.{}", positions.durable, positions.searchable),
                shared.searched.stamp(Positions(positions)),
            ),
        };
        let asked = format!(
            "{:?}|{}|{}|{}",
            request.query,
            request.text.as_deref().unwrap_or_default(),
            request.limit,
            shared.link_base.as_ref().map_or("", Url::as_str),
        );
        let validators = Validators::new(
            &position,
            &[
                RENDERING_VERSION.as_bytes(),
                shared.store_id.as_bytes(),
                format.label().as_bytes(),
                asked.as_bytes(),
                self_url.as_bytes(),
            ],
            stamp,
        );
        if validators.not_modified(headers) {
            return Ok(self.respond(StatusCode::NOT_MODIFIED, format, &validators, Body::empty()));
        }

        let deadline = shared.limits.timeout();
        let last_modified = validators.stamp.last_modified;
        let written = async {
            let releases = self.releases(&request, &caller).await?;
            let link_base = shared.link_base.clone();
            tokio::task::spawn_blocking(move || {
                render(
                    &request,
                    &releases,
                    link_base.as_ref(),
                    self_url,
                    last_modified,
                )
            })
            .await
            .map_err(|error| FeedError::Render(Box::new(error)))?
        };
        let body = tokio::time::timeout(deadline, written)
            .await
            .map_err(|_| FeedError::DeadlineExceeded(deadline))??;
        Ok(self.respond(StatusCode::OK, format, &validators, Body::from(body)))
    }

    /// The releases a feed shows: `List`'s first page for the filter, or
    /// for `q` the first results of `Search` ordered newest first, as many
    /// pages as the limit takes.
    async fn releases(
        &self,
        request: &FeedRequest,
        caller: &Caller,
    ) -> Result<Vec<PressRelease>, FeedError> {
        let releases = &self.shared.releases;
        let limit = request.limit;
        let Some(text) = &request.text else {
            let list = ListPressReleasesRequest {
                filter: Some(request.filter.clone()),
                page_size: limit as i32,
                ..Default::default()
            };
            return Ok(releases.list(list, caller).await?.press_releases);
        };
        let mut found = Vec::with_capacity(limit);
        let mut page_token = String::new();
        while found.len() < limit {
            let page = releases
                .search(SearchPressReleasesRequest {
                    query: text.clone(),
                    filter: Some(request.filter.clone()),
                    page_size: (limit - found.len()).min(MAX_SEARCH_PAGE_SIZE) as i32,
                    page_token,
                    order_by: "publish_time desc".into(),
                })
                .await?;
            found.extend(
                page.results
                    .into_iter()
                    .filter_map(|result| result.press_release),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        found.truncate(limit);
        Ok(found)
    }

    /// A feed answer (200 with `body`, or 304) with its validators and
    /// caching headers. Both carry the same ones, `Vary: Accept-Encoding`
    /// included: the compression layer adds it only to a body it could
    /// compress, and a 304 has none, but a cache must still key the answer
    /// it revalidates by encoding (RFC 9110, 15.4.5).
    fn respond(
        &self,
        status: StatusCode,
        format: Format,
        validators: &Validators,
        body: Body,
    ) -> Response {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if status == StatusCode::OK {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
        }
        headers.insert(header::ETAG, validators.etag.clone());
        headers.insert(header::LAST_MODIFIED, validators.last_modified());
        headers.insert(header::CACHE_CONTROL, self.shared.cache_control.clone());
        headers.insert(header::VARY, header::ACCEPT_ENCODING.into());
        response
    }
}

/// The `GET /feeds/{format}` handler: a span per request (format and
/// caller; never the query, which may hold a key), the answer, the metrics.
async fn feed(
    State(feeds): State<Syndication>,
    Path(format): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let format = Format::parse(&format);
    let span = tracing::info_span!(
        "feed",
        format = format.map_or("none", Format::label),
        caller = tracing::field::Empty,
    );
    let response = async {
        let Some(format) = format else {
            return FeedError::NoSuchFeed(crate::text::cut(uri.path(), 200)).into_response();
        };
        match feeds.answer(format, uri.query(), &headers).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%error, "feed request refused");
                error.into_response()
            }
        }
    }
    .instrument(span)
    .await;
    feeds
        .shared
        .metrics
        .record(format, response.status(), started.elapsed());
    response
}

/// Maps and writes a feed (CPU work, for the blocking pool).
fn render(
    request: &FeedRequest,
    releases: &[PressRelease],
    link_base: Option<&Url>,
    self_url: String,
    last_modified: std::time::SystemTime,
) -> Result<String, FeedError> {
    let entries: Vec<Entry<'_>> = releases
        .iter()
        .map(|release| Entry::new(release, link_base))
        .collect();
    let updated = entries
        .iter()
        .map(|entry| entry.updated)
        .max()
        .unwrap_or_else(|| last_modified.into());
    let info = FeedInfo {
        title: title(request),
        description: "Press releases from Pressroom, newest first".into(),
        home_url: link_base.map_or_else(|| self_url.clone(), Url::to_string),
        self_url,
        updated,
    };
    match request.format {
        Format::Rss => rss::write(&info, &entries).map_err(|e| FeedError::Render(Box::new(e))),
        Format::Atom => atom::write(&info, &entries).map_err(|e| FeedError::Render(Box::new(e))),
        Format::Json => {
            json_feed::write(&info, &entries).map_err(|e| FeedError::Render(Box::new(e)))
        }
    }
}

/// The feed's title: "Press releases", then the filter and query it shows.
fn title(request: &FeedRequest) -> String {
    let filter = &request.filter;
    let mut parts = Vec::new();
    for (name, values) in [
        ("channel", &filter.channels),
        ("country", &filter.countries),
        ("language", &filter.languages),
        ("issuer", &filter.issuers),
        ("subject", &filter.subjects),
        ("industry", &filter.industries),
        ("ticker", &filter.tickers),
    ] {
        if !values.is_empty() {
            parts.push(format!("{name} {}", values.join(" or ")));
        }
    }
    if let Some(text) = &request.text {
        parts.push(format!("matching “{text}”"));
    }
    if parts.is_empty() {
        "Press releases".into()
    } else {
        format!("Press releases: {}", parts.join("; "))
    }
}

/// The feed's own URL, as the client reached it (`Host`, and
/// `X-Forwarded-Proto` from a TLS-terminating proxy), without the key.
fn self_url(headers: &HeaderMap, request: &FeedRequest) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|proto| proto.to_str().ok())
    {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let mut url = format!("{scheme}://{host}/feeds/{}", request.format.label());
    if !request.public_query.is_empty() {
        url.push('?');
        url.push_str(&request.public_query);
    }
    url
}

/// Both read positions, ordered only when both agree (a pair read while
/// the other moved is neither older nor newer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Positions(ReadPositions);

impl PartialOrd for Positions {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let durable = self.0.durable.cmp(&other.0.durable);
        let searchable = self.0.searchable.cmp(&other.0.searchable);
        match (durable, searchable) {
            (a, b) if a == b => Some(a),
            (Ordering::Equal, other) | (other, Ordering::Equal) => Some(other),
            _ => None,
        }
    }
}

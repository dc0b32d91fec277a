//! The HTTP feeds (RSS, Atom, JSON Feed): the real server with
//! `--feeds-listen` on port 0, asked with a real HTTP client (reqwest), and
//! every answer read back with parsers that are not ours: feed-rs for all
//! three formats, the `rss` crate's validator for RSS 2.0, serde_json
//! against JSON Feed 1.1's required fields. The releases a feed shows are
//! compared with what gRPC List and Search answer for the same filter.
//!
//! One file per kind of test: the mapping of each format and its links,
//! filters and queries against List and Search, conditional GET,
//! releases that change (embargoes, withdrawals, updates), and access
//! (keys, refusals, limits, metrics). This file holds the HTTP client they
//! share and the releases they make.

mod access;
mod changes;
mod conditional;
mod filters;
mod mapping;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pressroom::proto::v1::{
    Dateline, MediaAsset, Organization, PressRelease, Source, Ticker, press_release::BodyFormat,
};
use serde_json::Value;

use crate::helpers::{TestKeys, TestServer, temp_dir, write_keys};

/// Boxed errors, as the tests return them.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP client of one server's feeds.
struct Feeds {
    base: String,
    http: reqwest::Client,
}

/// An answer: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The problem document of an error answer.
    fn problem(&self) -> Result<Value, Error> {
        assert_eq!(self.header("content-type"), "application/problem+json");
        Ok(serde_json::from_slice(&self.body)?)
    }
}

impl Feeds {
    fn of(server: &TestServer) -> Result<Self, Error> {
        let addr = server
            .feeds_addr
            .ok_or("the server has no feeds listener")?;
        // reqwest is built with rustls but no crypto provider (for
        // `pressroom follow`); the feeds here are plain HTTP, but the
        // client wants one all the same.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().build()?,
        })
    }

    /// GETs `path` (with its query) sending `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, Error> {
        self.send(reqwest::Method::GET, path, headers).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        Ok(Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await?,
        })
    }

    /// GETs a feed that must be served, and parses it with feed-rs.
    async fn parsed(&self, path: &str) -> Result<(feed_rs::model::Feed, Answer), Error> {
        let answer = self.get(path, &[]).await?;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
        let feed = feed_rs::parser::parse(&answer.body[..])
            .map_err(|e| format!("{path} does not parse: {e}\n{}", answer.text()))?;
        Ok((feed, answer))
    }

    /// The release names a JSON feed lists, in order.
    async fn names(&self, query: &str) -> Result<Vec<String>, Error> {
        let (feed, _) = self.parsed(&format!("/feeds/json?{query}")).await?;
        Ok(feed.entries.into_iter().map(|entry| entry.id).collect())
    }
}

/// A server with a keys file and feeds, and `flags`.
async fn with_keys(flags: &[&str]) -> (TestServer, TestKeys) {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let keys_file = keys.path.display().to_string();
    let mut all = vec!["--keys-file", &keys_file, "--feeds-listen", "127.0.0.1:0"];
    all.extend_from_slice(flags);
    (TestServer::start_in(dir, &all).await, keys)
}

fn names(releases: &[PressRelease]) -> Vec<String> {
    releases.iter().map(|r| r.name.clone()).collect()
}

/// The UUID of a release name.
fn uuid_of(name: &str) -> String {
    name.trim_start_matches("pressReleases/").to_string()
}

/// A release with every field a feed maps, and a body that must survive
/// the trip: non-ASCII, markup, entities, a CDATA terminator.
fn full_release() -> PressRelease {
    PressRelease {
        headline: "Ça marche: 新しい工場 opens — “quotes” & <angle brackets>".into(),
        subheadline: "A subheadline".into(),
        summary: "Résumé & more <b>not markup</b>".into(),
        body: "<p>Ünïcödé body with <b>bold</b>, <a href=\"https://example.com/x?a=1&amp;b=2\">\
               a link</a> and 🚀.</p><p>Ends a CDATA section: ]]&gt; and goes on.</p>"
            .into(),
        body_format: BodyFormat::Html as i32,
        language: "fr".into(),
        dateline: Some(Dateline {
            text: "BAKU, Azerbaijan, Feb. 8".into(),
            locality: "Baku".into(),
            region: String::new(),
            country_code: "AZ".into(),
        }),
        issuer: Some(Organization {
            name: "Acme Corp".into(),
            website: "https://acme.example".into(),
            tickers: vec![Ticker {
                exchange: "NASDAQ".into(),
                symbol: "ACME".into(),
            }],
            ..Default::default()
        }),
        channels: vec!["Technology".into(), "Business".into()],
        subjects: vec!["Product Launch".into(), "technology".into()],
        industries: vec!["Manufacturing".into()],
        media: vec![MediaAsset {
            url: "https://acme.example/plant.jpg".into(),
            mime_type: "image/jpeg".into(),
            caption: "The plant".into(),
        }],
        source: Some(Source {
            provider: "wire".into(),
            item_id: "item-1".into(),
            url: "https://wire.example/item-1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn seconds(time: Option<&pressroom::proto::Timestamp>) -> i64 {
    time.map_or(0, |t| t.seconds)
}

//! `pressroom follow URL…`: keeps a Pressroom in step with wire feeds. Each
//! feed (RSS, Atom, NewsML-G2, NewsML 1.2 or ninjs over http or https) is
//! polled on an interval with a conditional GET (`If-None-Match`,
//! `If-Modified-Since`); new and changed items are sent through
//! `ImportPressReleases`, where the source (provider, item id) and its
//! version make every send idempotent: a later version of an item updates
//! its press release, the same version again is a duplicate.
//!
//! A small JSON state file keeps, per feed, the validators of the last
//! response that was fully handled and a fingerprint of every item sent, so
//! that a restart sends nothing again (and a lost state file costs only
//! duplicates, never copies). Validators are saved only once every item of
//! a response is on the server: a failed import is retried in full at the
//! next poll instead of being hidden behind a 304.
//!
//! Errors (network, HTTP status, a document that cannot be read, the server
//! unavailable) back off: the wait doubles from `--interval` per failure up
//! to `--max-backoff`. One line per poll goes to stderr, in `key=value`
//! form for log collectors.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use prost::Message as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tonic::Code;

use super::{Client, ClientArgs, ClientError, connect};
use crate::{
    config::parse_duration,
    formats::{self, FeedItem},
    proto::v1::{ImportPressReleasesRequest, PressRelease},
};

/// Largest feed document read, in bytes.
const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// `pressroom follow`
#[derive(Clone, Debug, clap::Args)]
pub struct FollowArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Feeds to follow (http or https): RSS, Atom, NewsML-G2, NewsML 1.2 or
    /// ninjs.
    #[arg(required = true, env = "PRESSROOM_FOLLOW_URLS", value_delimiter = ' ')]
    urls: Vec<String>,
    /// How often each feed is polled.
    #[arg(long, env = "PRESSROOM_FOLLOW_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// The longest wait after failures; the wait doubles from --interval
    /// with each failure in a row.
    #[arg(long, env = "PRESSROOM_FOLLOW_MAX_BACKOFF", default_value = "15m", value_parser = parse_duration)]
    max_backoff: Duration,
    /// Where the validators and the items sent are kept between runs.
    #[arg(
        long,
        env = "PRESSROOM_FOLLOW_STATE",
        default_value = "pressroom-follow.json"
    )]
    state_file: PathBuf,
    /// The source provider of every feed's items; by default the one each
    /// document names (a feed's site host, NewsML's provider).
    #[arg(long, env = "PRESSROOM_FOLLOW_PROVIDER")]
    provider: Option<String>,
    /// Longest an HTTP request may take.
    #[arg(long, env = "PRESSROOM_FOLLOW_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Stop after this many polls of every feed (0: run until stopped).
    #[arg(long, default_value_t = 0)]
    polls: u64,
}

/// What is kept between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Per feed URL.
    feeds: BTreeMap<String, FeedState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FeedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    /// Item key → fingerprint of what was sent (or refused for good).
    #[serde(default)]
    items: BTreeMap<String, String>,
}

/// One poll's outcome, for the log line.
#[derive(Debug, Default)]
struct Poll {
    status: u16,
    items: usize,
    sent: usize,
    unchanged: usize,
    unreadable: usize,
    created: i64,
    updated: i64,
    duplicates: i64,
    failed: usize,
}

/// Why a poll failed (it is retried after a back-off).
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("fetching failed")]
    Http(#[from] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the document cannot be read")]
    Document(#[from] formats::FeedError),
    #[error("the server refused the import")]
    Import(#[from] tonic::Status),
    #[error("the server cannot be reached: {0}")]
    Connect(String),
}

pub(super) async fn follow(args: FollowArgs) -> Result<(), ClientError> {
    for url in &args.urls {
        match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => {
                return Err(ClientError::Usage(format!(
                    "{url:?} is not an http or https URL"
                )));
            }
        }
    }
    if args.interval.is_zero() {
        return Err(ClientError::Usage("--interval must be more than 0".into()));
    }
    // reqwest's TLS is rustls with the ring provider tonic uses too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .user_agent(concat!(
            "pressroom/",
            env!("CARGO_PKG_VERSION"),
            " (follow)"
        ))
        .timeout(args.timeout)
        .build()
        .map_err(|e| ClientError::Other(Box::new(e)))?;
    let mut state = load_state(&args.state_file)?;
    let mut client: Option<Client> = None;

    let mut due: Vec<(Instant, u32, u64)> = args
        .urls
        .iter()
        .map(|_| (Instant::now(), 0u32, 0u64))
        .collect();
    let stop = crate::shutdown::signal();
    tokio::pin!(stop);
    loop {
        let Some((index, at)) = due
            .iter()
            .enumerate()
            .filter(|(_, (_, _, polls))| args.polls == 0 || *polls < args.polls)
            .map(|(i, (at, _, _))| (i, *at))
            .min_by_key(|(_, at)| *at)
        else {
            return Ok(());
        };
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = &mut stop => return Ok(()),
        }
        let url = &args.urls[index];
        let feed = state.feeds.entry(url.clone()).or_default();
        let started = std::time::Instant::now();
        let outcome = poll(&args, &http, &mut client, url, feed).await;
        let (_, failures, polls) = &mut due[index];
        *polls += 1;
        let wait = match &outcome {
            Ok(_) => {
                *failures = 0;
                args.interval
            }
            Err(_) => {
                *failures = failures.saturating_add(1);
                backoff(args.interval, args.max_backoff, *failures)
            }
        };
        due[index].0 = Instant::now() + wait;
        let took = started.elapsed().as_millis();
        match outcome {
            Ok(poll) => eprintln!(
                "follow url={url} status={} items={} sent={} unchanged={} unreadable={} \
                 created={} updated={} duplicates={} failed={} took_ms={took} next_in={}s",
                poll.status,
                poll.items,
                poll.sent,
                poll.unchanged,
                poll.unreadable,
                poll.created,
                poll.updated,
                poll.duplicates,
                poll.failed,
                wait.as_secs_f64()
            ),
            Err(error) => {
                if matches!(error, PollError::Import(_) | PollError::Connect(_)) {
                    // Reconnect at the next poll.
                    client = None;
                }
                eprintln!(
                    "follow url={url} error={:?} failures={} took_ms={took} next_in={}s",
                    crate::telemetry::chain(&error),
                    due[index].1,
                    wait.as_secs_f64()
                );
            }
        }
        save_state(&args.state_file, &state)?;
    }
}

/// The wait after `failures` failures in a row: doubling from `interval`,
/// at most `max`, with up to a tenth more at random so that many followers
/// do not retry in step.
fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    let doubled = interval.saturating_mul(1u32 << failures.min(16));
    let base = doubled.min(max.max(interval));
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        base / 10 * u32::from(byte[0]) / 255
    } else {
        Duration::ZERO
    };
    base + jitter
}

/// Fetches a feed and sends what is new or changed.
async fn poll(
    args: &FollowArgs,
    http: &reqwest::Client,
    client: &mut Option<Client>,
    url: &str,
    feed: &mut FeedState,
) -> Result<Poll, PollError> {
    let mut request = http.get(url).header(
        reqwest::header::ACCEPT,
        "application/rss+xml, application/atom+xml, application/xml, application/json, */*;q=0.5",
    );
    if let Some(etag) = &feed.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(since) = &feed.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, since);
    }
    let mut response = request.send().await?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Poll {
            status: 304,
            ..Default::default()
        });
    }
    if !status.is_success() {
        return Err(PollError::Status(status.as_u16()));
    }
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (
        header(reqwest::header::ETAG),
        header(reqwest::header::LAST_MODIFIED),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(PollError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let items = formats::parse_document(&body, args.provider.as_deref())?;

    let mut outcome = Poll {
        status: status.as_u16(),
        items: items.len(),
        ..Default::default()
    };
    let mut seen = BTreeMap::new();
    let mut to_send: Vec<(String, String, PressRelease)> = Vec::new();
    for FeedItem { id, release, .. } in items {
        match release {
            Ok(release) => {
                let key = key_of(&id, &release);
                let print = fingerprint(&release);
                if feed.items.get(&key) == Some(&print) {
                    outcome.unchanged += 1;
                } else {
                    to_send.push((key.clone(), print.clone(), release));
                }
                seen.insert(key, print);
            }
            Err(why) => {
                let key = format!("unreadable:{id}");
                let print = hex(&Sha256::digest(why.as_bytes())[..8]);
                if feed.items.get(&key) != Some(&print) {
                    eprintln!("follow url={url} item={id:?} skipped={why:?}");
                }
                outcome.unreadable += 1;
                seen.insert(key, print);
            }
        }
    }

    if !to_send.is_empty() {
        let server = match client {
            Some(server) => server,
            None => client.insert(
                connect(&args.client)
                    .await
                    .map_err(|e| PollError::Connect(e.report()))?,
            ),
        };
        let requests: Vec<ImportPressReleasesRequest> = to_send
            .iter()
            .map(|(_, _, release)| ImportPressReleasesRequest {
                press_release: Some(release.clone()),
                request_id: String::new(),
            })
            .collect();
        outcome.sent = requests.len();
        let response = server
            .import_press_releases(tokio_stream::iter(requests))
            .await?
            .into_inner();
        outcome.created = response.created;
        outcome.updated = response.updated;
        outcome.duplicates = response.duplicates;
        let mut retry = false;
        let mut failed_at = BTreeMap::new();
        for failure in &response.failed {
            failed_at.insert(failure.index, failure);
        }
        for (index, (key, _, _)) in to_send.iter().enumerate() {
            let Some(failure) = failed_at.get(&(index as i64)) else {
                continue;
            };
            outcome.failed += 1;
            let code = Code::from_i32(failure.code);
            eprintln!(
                "follow url={url} item={key:?} refused={:?}",
                format!("{code:?}: {}", failure.message)
            );
            if !matches!(
                code,
                Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition
            ) {
                // Not the item's fault: send it again next time.
                seen.remove(key);
                retry = true;
            }
        }
        if retry {
            // Keep what went through; fetch everything again next time.
            for (key, print) in &seen {
                feed.items.insert(key.clone(), print.clone());
            }
            feed.etag = None;
            feed.last_modified = None;
            return Ok(outcome);
        }
    }
    feed.items = seen;
    feed.etag = etag;
    feed.last_modified = last_modified;
    Ok(outcome)
}

/// An item's identity: its source when it has one, else its id in the
/// document.
fn key_of(id: &str, release: &PressRelease) -> String {
    match &release.source {
        Some(source) if !source.item_id.is_empty() => {
            format!("{}\u{1f}{}", source.provider, source.item_id)
        }
        _ => format!("id\u{1f}{id}"),
    }
}

/// A fingerprint of what would be sent.
fn fingerprint(release: &PressRelease) -> String {
    hex(&Sha256::digest(release.encode_to_vec())[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_state(path: &Path) -> Result<State, ClientError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Usage(format!(
                "{}: not a follow state file ({e}); move it away to start afresh",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(ClientError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the state beside its place and renames it over, so a crash
/// leaves the old state or the new one, never half of one.
fn save_state(path: &Path, state: &State) -> Result<(), ClientError> {
    let file_error = |source| ClientError::File {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| ClientError::Other(Box::new(e)))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary).map_err(file_error)?;
        file.write_all(&json).map_err(file_error)?;
        file.sync_all().map_err(file_error)?;
    }
    std::fs::rename(&temporary, path).map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let (interval, max) = (Duration::from_secs(10), Duration::from_secs(100));
        let within = |wait: Duration, base: u64| {
            wait >= Duration::from_secs(base) && wait <= Duration::from_secs(base) * 11 / 10
        };
        assert!(within(backoff(interval, max, 1), 20));
        assert!(within(backoff(interval, max, 2), 40));
        assert!(within(backoff(interval, max, 3), 80));
        assert!(within(backoff(interval, max, 4), 100));
        assert!(within(backoff(interval, max, 60), 100));
        assert!(
            within(backoff(interval, Duration::from_secs(1), 3), 10),
            "never below the interval"
        );
    }

    #[test]
    fn state_survives_a_save_and_load() -> Result<(), ClientError> {
        let dir = tempfile::tempdir().map_err(|e| ClientError::Other(Box::new(e)))?;
        let path = dir.path().join("state.json");
        assert!(
            load_state(&path)?.feeds.is_empty(),
            "no file: a fresh state"
        );
        let mut state = State::default();
        state.feeds.insert(
            "http://wire.example/rss".into(),
            FeedState {
                etag: Some("\"v1\"".into()),
                last_modified: None,
                items: BTreeMap::from([("wire\u{1f}1".into(), "abc".into())]),
            },
        );
        save_state(&path, &state)?;
        let again = load_state(&path)?;
        assert_eq!(
            again.feeds["http://wire.example/rss"].etag.as_deref(),
            Some("\"v1\"")
        );
        std::fs::write(&path, "garbage").map_err(|e| ClientError::Other(Box::new(e)))?;
        assert!(
            load_state(&path).is_err(),
            "a damaged state file is not silently dropped"
        );
        Ok(())
    }
}

//! Hostile and sloppy input over a real connection: thousands of malformed,
//! truncated, oversized and wrong-typed request bodies sent raw to every
//! method, broken gRPC framing, and invalid field values through the normal
//! client. Every one must get a clean gRPC status (never a reset connection
//! or an internal error for a message that decodes), the server must keep
//! serving, and its memory must stay bounded.
//!
//! Also here, so that they run in CI: property tests over the code paths the
//! fuzz targets cover, through the same oracles (`fuzz/src/checks.rs`), and
//! the fuzzers' findings kept as regression tests.
//!
//! One file per kind of input: raw bodies and broken framing, names,
//! content, updates, lists (page sizes, tokens, filters), watch starting
//! points, search queries, statistics days, values large enough to strain a
//! connection, the subscription service's fields (raw bodies to its methods
//! are in `raw_bodies`); then the property tests and the fuzzers' findings.

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

mod content;
mod framing;
mod fuzz_properties;
mod fuzz_regressions;
mod large_values;
mod lists;
mod names;
mod raw_bodies;
mod search_queries;
mod stats_days;
mod subscriptions;
mod updates;
mod watch_starts;

use pressroom::proto::v1::{
    Dateline, GetPressReleaseRequest, Organization, PressRelease, Source, Ticker,
    press_release::BodyFormat, press_release_service_client::PressReleaseServiceClient,
};
use proptest::{
    prelude::Rng as _,
    test_runner::{RngAlgorithm, TestRng},
};
use tonic::{Code, Status, transport::Channel};

use crate::helpers::{TestResult, TestServer, create_request};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A client of the server under test.
type Client = PressReleaseServiceClient<Channel>;

/// A server holding two press releases (so that List has two pages of
/// one), a client of it, the first release, and a seeded random source.
/// Keep the server until the test ends: dropping it stops it.
async fn two_releases() -> Result<(TestServer, Client, PressRelease, TestRng), Error> {
    let server = TestServer::start().await;
    let mut client = server.client.clone();
    let created = client
        .create_press_release(create_request(sample_release(1)))
        .await?
        .into_inner();
    client
        .create_press_release(create_request(sample_release(2)))
        .await?;
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]);
    Ok((server, client, created, rng))
}

/// The server still answers after what a test sent it.
async fn still_serving(client: &mut Client, created: &PressRelease) -> TestResult {
    client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await?;
    Ok(())
}

/// A valid release with every kind of field set.
fn sample_release(i: usize) -> PressRelease {
    PressRelease {
        source: Some(Source {
            provider: "hostile-wire".into(),
            item_id: format!("item-{i}"),
            url: format!("https://wire.example/{i}"),
            ..Default::default()
        }),
        headline: format!("Acme opens solar plant number {i}"),
        subheadline: "A new plant".into(),
        summary: "Acme opened a plant.".into(),
        body: format!("<p>BAKU — Acme today opened plant {i}.</p>"),
        body_format: BodyFormat::Html as i32,
        language: "en-GB".into(),
        dateline: Some(Dateline {
            text: "BAKU".into(),
            country_code: "AZ".into(),
            ..Default::default()
        }),
        issuer: Some(Organization {
            name: "Acme".into(),
            website: "https://acme.example".into(),
            tickers: vec![Ticker {
                exchange: "NYSE".into(),
                symbol: "ACME".into(),
            }],
            ..Default::default()
        }),
        channels: vec!["business".into(), "energy".into()],
        keywords: vec!["solar".into()],
        ..Default::default()
    }
}

/// Expects `result` to be a status with one of `codes`; an INVALID_ARGUMENT
/// must name a field.
fn expect_status<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, Status>,
    codes: &[Code],
) -> Result<(), Error> {
    match result {
        Err(status) if codes.contains(&status.code()) => {
            if status.code() == Code::InvalidArgument {
                use tonic_types::StatusExt as _;
                let named = status
                    .get_details_bad_request()
                    .is_some_and(|bad| !bad.field_violations.is_empty());
                if !named {
                    return Err(
                        format!("{what}: INVALID_ARGUMENT naming no field: {status:?}").into(),
                    );
                }
            }
            Ok(())
        }
        Ok(_) if codes.contains(&Code::Ok) => Ok(()),
        other => Err(format!("{what}: got {other:?}, expected one of {codes:?}").into()),
    }
}

/// Expects INVALID_ARGUMENT naming `field` (or fields inside it) and no
/// other.
fn expect_invalid<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, Status>,
    field: &str,
) -> Result<(), Error> {
    match result {
        Err(status) if status.code() == Code::InvalidArgument => {
            let fields = crate::helpers::violated_fields(&status);
            if !fields.is_empty() && fields.iter().all(|f| f.starts_with(field)) {
                Ok(())
            } else {
                Err(format!("{what}: violations of {fields:?}, expected {field}").into())
            }
        }
        other => Err(format!("{what}: got {other:?}, expected INVALID_ARGUMENT of {field}").into()),
    }
}

const INVALID: &[Code] = &[Code::InvalidArgument];

/// Up to `max` characters drawn from printable ASCII, controls and a few
/// multi-byte characters.
fn random_text(rng: &mut TestRng, max: u64) -> String {
    const ODD: [char; 8] = ['\0', '\u{7f}', 'é', '😀', '\u{200b}', '\n', '-', '_'];
    let len = rng.next_u64() % (max + 1);
    (0..len)
        .map(|_| match rng.next_u64() % 10 {
            0 => ODD[(rng.next_u64() % ODD.len() as u64) as usize],
            _ => char::from(b' ' + (rng.next_u64() % 95) as u8),
        })
        .collect()
}

//! WatchPressReleases with a text query: exactly search's semantics (in
//! both directions, on generated data, replayed and live), history then
//! live, resuming, progress while nothing matches, UNMATCHED, withdrawals
//! and embargoes as for filtered streams, highlights, bad queries refused as
//! search refuses them, equal queries matched once, and the CLI.
//!
//! One file per kind of test: streams compared with search on a generated
//! corpus (the corpus is `corpus.rs`), what a query stream delivers as
//! releases change, queries refused, equal queries grouped, and the CLI.
//! This file holds the requests they share.

mod cli;
mod corpus;
mod events;
mod grouped;
mod refused;
mod search_semantics;

use pressroom::proto::v1::{
    PressRelease, PressReleaseFilter, StartPosition, WatchPressReleasesRequest,
    press_release_service_client::PressReleaseServiceClient, watch_press_releases_request::Start,
};
use tonic::{Status, transport::Channel};

use crate::helpers::create_request;

type Client = PressReleaseServiceClient<Channel>;
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A watch request with a query (and filter), from a starting point.
fn query_watch(
    query: &str,
    filter: Option<PressReleaseFilter>,
    start: Start,
) -> WatchPressReleasesRequest {
    WatchPressReleasesRequest {
        filter,
        start: Some(start),
        query: query.into(),
        highlight: true,
    }
}

fn beginning() -> Start {
    Start::Position(StartPosition::Beginning as i32)
}

fn now() -> Start {
    Start::Position(StartPosition::Now as i32)
}

async fn create(client: &mut Client, release: PressRelease) -> Result<PressRelease, Status> {
    Ok(client
        .create_press_release(create_request(release))
        .await?
        .into_inner())
}

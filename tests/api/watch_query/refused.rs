//! Bad queries are refused as search refuses them: the same code, message
//! and field violations.

use pressroom::proto::v1::{SearchPressReleasesRequest, WatchPressReleasesRequest};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use super::{now, query_watch};
use crate::helpers::{TestResult, TestServer};

/// The status, its message and the fields its BadRequest names.
fn described(status: &Status) -> (Code, String, Vec<(String, String)>) {
    let fields = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    (status.code(), status.message().to_string(), fields)
}

#[tokio::test]
async fn bad_queries_are_refused_as_search_refuses_them() -> TestResult {
    let mut server = TestServer::start().await;
    let long = "acme ".repeat(201);
    for query in [
        "OR acme",
        "acme OR",
        "acme \"solar",
        "color:red",
        "-recall",
        "acme \"!!!\"",
        "headline: acme",
        "acme\u{7}bell",
        long.as_str(),
    ] {
        let searched = server
            .client
            .search_press_releases(SearchPressReleasesRequest {
                query: query.into(),
                ..Default::default()
            })
            .await;
        let watched = server
            .client
            .watch_press_releases(query_watch(query, None, now()))
            .await;
        let (Err(search), Err(watch)) = (searched, watched) else {
            return Err(format!("{query:?} was not refused by both").into());
        };
        assert_eq!(
            search.code(),
            Code::InvalidArgument,
            "{query:?}: {search:?}"
        );
        assert_eq!(described(&watch), described(&search), "{query:?}");
    }
    let without_query = server
        .client
        .watch_press_releases(WatchPressReleasesRequest {
            highlight: true,
            ..Default::default()
        })
        .await
        .err()
        .map(|status| described(&status));
    assert!(
        without_query.is_some_and(|(code, _, fields)| code == Code::InvalidArgument
            && fields.iter().any(|(field, _)| field == "highlight")),
        "highlight needs a query"
    );
    let refused = server
        .client
        .watch_press_releases(query_watch("acme \"!!!\"", None, now()))
        .await
        .err()
        .map(|s| s.message().to_string())
        .unwrap_or_default();
    assert!(refused.contains("position 5"), "{refused}");
    Ok(())
}

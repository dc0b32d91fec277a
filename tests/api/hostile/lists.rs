//! What shapes a list: page tokens (of another list, another filter, or
//! made up), page sizes, and filters, which List, Stats, Search and Watch
//! all refuse alike.

use pressroom::proto::v1::{
    GetPressReleaseStatsRequest, ListPressReleasesRequest, PressReleaseFilter,
    SearchPressReleasesRequest, WatchPressReleasesRequest,
};
use proptest::test_runner::TestRng;
use tonic::Code;

use super::{INVALID, expect_status, random_text, still_serving, two_releases};
use crate::helpers::{TestResult, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_and_foreign_page_tokens_are_refused() -> TestResult {
    let (_server, mut client, created, mut rng) = two_releases().await?;
    let first_page = client
        .list_press_releases(ListPressReleasesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let token = first_page.next_page_token.clone();
    assert!(!token.is_empty(), "two releases make two pages of one");
    let tokens = odd_page_tokens(&token, &mut rng);
    for token in &tokens {
        let listed = client
            .list_press_releases(ListPressReleasesRequest {
                page_token: token.clone(),
                ..Default::default()
            })
            .await;
        expect_status(&format!("List with page token {token:?}"), listed, INVALID)?;
        let searched = client
            .search_press_releases(SearchPressReleasesRequest {
                query: "acme".into(),
                page_token: token.clone(),
                ..Default::default()
            })
            .await;
        expect_status("Search with a foreign page token", searched, INVALID)?;
    }
    let other_filter = client
        .list_press_releases(ListPressReleasesRequest {
            page_token: token,
            filter: Some(PressReleaseFilter {
                channels: vec!["energy".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    expect_status("List with another filter's token", other_filter, INVALID)?;
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_page_sizes_are_refused_and_huge_ones_clamped() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    for page_size in [-1, i32::MIN] {
        let listed = client
            .list_press_releases(ListPressReleasesRequest {
                page_size,
                ..Default::default()
            })
            .await;
        expect_status("List with a negative page size", listed, INVALID)?;
    }
    let huge = client
        .list_press_releases(ListPressReleasesRequest {
            page_size: i32::MAX,
            ..Default::default()
        })
        .await;
    expect_status("List with a huge page size", huge, &[Code::Ok])?;
    still_serving(&mut client, &created).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_refused_by_every_method_that_takes_one() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    for filter in bad_filters() {
        let what = format!("{filter:?}");
        let listed = client
            .list_press_releases(ListPressReleasesRequest {
                filter: Some(filter.clone()),
                ..Default::default()
            })
            .await;
        expect_status(&format!("List with {what}"), listed, INVALID)?;
        let stats = client
            .get_press_release_stats(GetPressReleaseStatsRequest {
                filter: Some(filter.clone()),
                ..Default::default()
            })
            .await;
        expect_status(&format!("Stats with {what}"), stats, INVALID)?;
        let searched = client
            .search_press_releases(SearchPressReleasesRequest {
                query: "acme".into(),
                filter: Some(filter.clone()),
                ..Default::default()
            })
            .await;
        expect_status(&format!("Search with {what}"), searched, INVALID)?;
        let watched = client
            .watch_press_releases(WatchPressReleasesRequest {
                filter: Some(filter),
                start: None,
                ..Default::default()
            })
            .await;
        expect_status(&format!("Watch with {what}"), watched, INVALID)?;
    }
    still_serving(&mut client, &created).await
}

/// Made-up page tokens, and ones made from a real `token`: any list must
/// refuse them all.
pub(super) fn odd_page_tokens(token: &str, rng: &mut TestRng) -> Vec<String> {
    let mut tokens = vec![
        "garbage".to_string(),
        token.chars().rev().collect(),
        format!("{token}A"),
        "\0".into(),
        "x".repeat(100_000),
    ];
    if token.len() > 4 {
        tokens.push(token[..token.len() - 4].to_string());
    }
    tokens.extend(
        (0..200)
            .map(|_| random_text(rng, 64))
            .filter(|t| !t.is_empty()),
    );
    tokens
}

/// Filters every method that takes one refuses, each naming a field.
pub(super) fn bad_filters() -> Vec<PressReleaseFilter> {
    let mut bad_filters = vec![
        PressReleaseFilter {
            countries: vec!["USA".into()],
            ..Default::default()
        },
        PressReleaseFilter {
            languages: vec!["not a tag".into()],
            ..Default::default()
        },
        PressReleaseFilter {
            channels: vec!["".into()],
            ..Default::default()
        },
        PressReleaseFilter {
            channels: vec!["c".into(); 101],
            ..Default::default()
        },
        PressReleaseFilter {
            publish_time_after: Some(at(2_000)),
            publish_time_before: Some(at(1_000)),
            ..Default::default()
        },
    ];
    for seconds in [i64::MAX, i64::MIN, 253_402_300_800] {
        bad_filters.push(PressReleaseFilter {
            publish_time_after: Some(at(seconds)),
            ..Default::default()
        });
        bad_filters.push(PressReleaseFilter {
            publish_time_before: Some(at(seconds)),
            ..Default::default()
        });
    }
    bad_filters
}

//! Search queries, valid or not: refused by position, or run; never an
//! internal error.

use pressroom::proto::v1::SearchPressReleasesRequest;
use proptest::{prelude::Rng as _, test_runner::TestRng};
use tonic::Code;

use super::{INVALID, expect_status, still_serving, two_releases};
use crate::helpers::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_search_queries_are_refused_or_run() -> TestResult {
    let (_server, mut client, created, mut rng) = two_releases().await?;
    for query in odd_queries(&mut rng) {
        let what = format!("Search for {:?}", &query[..query.len().min(60)]);
        let searched = client
            .search_press_releases(SearchPressReleasesRequest {
                query,
                ..Default::default()
            })
            .await;
        expect_status(
            &what,
            searched,
            &[Code::Ok, Code::InvalidArgument, Code::Unavailable],
        )?;
    }
    let negative = client
        .search_press_releases(SearchPressReleasesRequest {
            query: "acme".into(),
            page_size: -1,
            ..Default::default()
        })
        .await;
    expect_status("Search with a negative page size", negative, INVALID)?;
    still_serving(&mut client, &created).await
}

/// Queries valid and not, odd and long, then random ones made of the
/// language's pieces.
pub(super) fn odd_queries(rng: &mut TestRng) -> Vec<String> {
    let mut queries: Vec<String> = [
        "",
        "OR",
        "a OR",
        "OR a",
        "-a",
        "- a",
        "\"unclosed",
        "\"\"",
        "\" \"",
        "nope:a",
        "headline:",
        "headline: a",
        "a\0b",
        "\u{7}",
        "!!!",
        "\"...\"",
        "headline:!!!",
        "-!!! a",
        "a OR -b",
        "a OR OR b",
        "😀",
        "\"a\" OR \"b c\"",
        "keywords:\"\"",
        "HEADLINE:a",
        "a:b:c",
        "---a",
        "a -\"b c\"",
        "::::",
        "\u{200b}",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    queries.push("a ".repeat(600));
    queries.push("x".repeat(100_000));
    queries.extend((0..300).map(|_| random_query(rng)));
    queries
}

/// A query made of the language's own pieces, in random order.
fn random_query(rng: &mut TestRng) -> String {
    const PIECES: [&str; 16] = [
        "acme",
        "solar",
        " ",
        " ",
        "OR",
        "-",
        "\"",
        "headline:",
        "body:",
        "nope:",
        "!!",
        "é",
        "plant",
        "\0",
        "keywords:",
        ":",
    ];
    let len = rng.next_u64() % 12;
    (0..len)
        .map(|_| PIECES[(rng.next_u64() % PIECES.len() as u64) as usize])
        .collect()
}

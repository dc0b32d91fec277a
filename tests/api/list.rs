//! ListPressReleases: order, filters, page sizes, page tokens, and paging
//! while writes go on.

use std::collections::{BTreeSet, HashSet};

use pressroom::proto::v1::{
    Dateline, ListPressReleasesRequest, ListPressReleasesResponse, Organization, PressRelease,
    PressReleaseFilter, Ticker, press_release_service_client::PressReleaseServiceClient,
};
use tonic::{Status, transport::Channel};

use crate::helpers::{TestResult, TestServer, at, create_request, release, violated_fields};

async fn list(
    client: &mut PressReleaseServiceClient<Channel>,
    filter: Option<PressReleaseFilter>,
    page_size: i32,
    page_token: &str,
) -> Result<ListPressReleasesResponse, Status> {
    client
        .list_press_releases(ListPressReleasesRequest {
            filter,
            page_size,
            page_token: page_token.into(),
            include_embargoed: false,
        })
        .await
        .map(|r| r.into_inner())
}

fn headlines(response: &ListPressReleasesResponse) -> Vec<&str> {
    response
        .press_releases
        .iter()
        .map(|r| r.headline.as_str())
        .collect()
}

/// A release published at `seconds`, with facets.
fn faceted(
    headline: &str,
    seconds: i64,
    channel: &str,
    country: &str,
    language: &str,
    ticker: &str,
) -> PressRelease {
    PressRelease {
        publish_time: Some(at(seconds)),
        channels: vec![channel.into()],
        language: language.into(),
        dateline: Some(Dateline {
            country_code: country.into(),
            ..Default::default()
        }),
        issuer: Some(Organization {
            name: format!("{ticker} Inc"),
            tickers: vec![Ticker {
                exchange: "NYSE".into(),
                symbol: ticker.into(),
            }],
            ..Default::default()
        }),
        ..release(headline)
    }
}

#[tokio::test]
async fn filters_combine_and_order_is_newest_first() -> TestResult {
    let mut server = TestServer::start().await;
    for input in [
        faceted("a", 1_000, "Business", "US", "en-US", "AAA"),
        faceted("b", 2_000, "Technology", "GB", "en-GB", "BBB"),
        faceted("c", 3_000, "Business", "DE", "de", "CCC"),
        faceted("d", 4_000, "Technology", "US", "en", "AAA"),
    ] {
        server
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    let client = &mut server.client;
    assert_eq!(
        headlines(&list(client, None, 0, "").await?),
        ["d", "c", "b", "a"]
    );

    let filter = |f: PressReleaseFilter| Some(f);
    let channels = PressReleaseFilter {
        channels: vec!["business".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(channels.clone()), 0, "").await?),
        ["c", "a"]
    );
    let or_within = PressReleaseFilter {
        countries: vec!["us".into(), "GB".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(or_within), 0, "").await?),
        ["d", "b", "a"]
    );
    let and_across = PressReleaseFilter {
        countries: vec!["US".into()],
        channels: vec!["Technology".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(and_across), 0, "").await?),
        ["d"]
    );
    let language_prefix = PressReleaseFilter {
        languages: vec!["en".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(language_prefix), 0, "").await?),
        ["d", "b", "a"]
    );
    let tickers = PressReleaseFilter {
        tickers: vec!["aaa".into(), "NYSE:CCC".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(tickers), 0, "").await?),
        ["d", "c", "a"]
    );
    let issuers = PressReleaseFilter {
        issuers: vec!["bbb inc".into()],
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(issuers), 0, "").await?),
        ["b"]
    );
    let window = PressReleaseFilter {
        publish_time_after: Some(at(2_000)),
        publish_time_before: Some(at(4_000)),
        ..Default::default()
    };
    assert_eq!(
        headlines(&list(client, filter(window), 0, "").await?),
        ["c", "b"]
    );
    let nothing = PressReleaseFilter {
        subjects: vec!["Sport".into()],
        ..channels
    };
    assert!(
        list(client, filter(nothing), 0, "")
            .await?
            .press_releases
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn page_sizes_and_tokens() -> TestResult {
    let mut server = TestServer::start().await;
    for i in 0..520 {
        let mut input = release(&format!("r{i}"));
        input.publish_time = Some(at(1_000_000 + i));
        input.channels = vec![if i % 2 == 0 { "even" } else { "odd" }.into()];
        server
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    let client = &mut server.client;
    let default = list(client, None, 0, "").await?;
    assert_eq!(default.press_releases.len(), 50, "0 means 50");
    let clamped = list(client, None, 10_000, "").await?;
    assert_eq!(clamped.press_releases.len(), 500, "clamped to 500");
    let rest = list(client, None, 500, &clamped.next_page_token).await?;
    assert_eq!(rest.press_releases.len(), 20);
    assert!(
        rest.next_page_token.is_empty(),
        "no token after the last page"
    );

    assert_eq!(
        violated_fields(
            &list(client, None, -1, "")
                .await
                .err()
                .ok_or("negative page size")?
        ),
        ["page_size"]
    );
    let garbage = list(client, None, 10, "bm90LWEtdG9rZW4")
        .await
        .err()
        .ok_or("foreign token")?;
    assert_eq!(violated_fields(&garbage), ["page_token"]);

    let even = PressReleaseFilter {
        channels: vec!["even".into()],
        ..Default::default()
    };
    let page = list(client, Some(even.clone()), 100, "").await?;
    assert!(page.press_releases.iter().all(|r| r.channels == ["even"]));
    let odd = PressReleaseFilter {
        channels: vec!["odd".into()],
        ..Default::default()
    };
    let replayed = list(client, Some(odd), 100, &page.next_page_token)
        .await
        .err()
        .ok_or("token with another filter")?;
    assert_eq!(violated_fields(&replayed), ["page_token"]);
    let mut seen = page.press_releases.len();
    let mut token = page.next_page_token;
    while !token.is_empty() {
        let page = list(client, Some(even.clone()), 100, &token).await?;
        seen += page.press_releases.len();
        token = page.next_page_token;
    }
    assert_eq!(seen, 260);
    Ok(())
}

#[tokio::test]
async fn paging_while_writing_never_repeats_or_skips() -> TestResult {
    let mut server = TestServer::start().await;
    let mut existing = BTreeSet::new();
    for i in 0..150 {
        let mut input = release(&format!("existing {i}"));
        input.publish_time = Some(at(1_600_000_000 + i * 10));
        input.channels = vec!["wire".into()];
        existing.insert(
            server
                .client
                .create_press_release(create_request(input))
                .await?
                .into_inner()
                .name,
        );
    }
    // Writers add releases at the front (now) and in between the existing ones.
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = server.client.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..40i64 {
                let mut input = release(&format!("new {w}-{i}"));
                input.channels = vec!["wire".into()];
                if i % 2 == 0 {
                    input.publish_time = Some(at(1_600_000_000 + i * 37 + w));
                }
                client.create_press_release(create_request(input)).await?;
            }
            Ok::<_, Status>(())
        }));
    }
    for filter in [
        None,
        Some(PressReleaseFilter {
            channels: vec!["wire".into()],
            ..Default::default()
        }),
    ] {
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(&mut server.client, filter.clone(), 7, &token).await?;
            seen.extend(page.press_releases.into_iter().map(|r| r.name));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a release was returned twice");
        let missing: Vec<_> = existing.iter().filter(|n| !unique.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "skipped releases that existed throughout: {missing:?}"
        );
    }
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

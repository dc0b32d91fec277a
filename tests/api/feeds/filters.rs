//! Filters and search queries as feed parameters: a feed shows what gRPC
//! List and Search answer for the same filter and query, on a corpus
//! spread over every facet.

use std::time::{Duration, Instant};

use pressroom::proto::v1::{
    Dateline, ImportPressReleasesRequest, ListPressReleasesRequest, Organization, PressRelease,
    PressReleaseFilter, SearchPressReleasesRequest, Ticker,
};
use tokio_stream::wrappers::ReceiverStream;

use super::{Error, Feeds, names, seconds};
use crate::helpers::{TestResult, TestServer, at};

/// Imports `count` releases across every facet, with distinct publish
/// times, in one stream.
async fn corpus(server: &mut TestServer, count: usize) -> Result<(), Error> {
    let channels = ["Technology", "Business", "Health"];
    let countries = ["AZ", "US", "FR"];
    let languages = ["en", "en-GB", "fr"];
    let issuers = ["Acme Corp", "Globex", "Initech"];
    let subjects = ["Earnings", "Product Launch"];
    let industries = ["Banking", "Energy"];
    let words = ["solar", "wind", "merger", "recall", "solar wind"];
    let (items, receiver) = tokio::sync::mpsc::channel(64);
    let mut importer = server.new_client().await;
    let import = tokio::spawn(async move {
        importer
            .import_press_releases(ReceiverStream::new(receiver))
            .await
    });
    for i in 0..count {
        let pick = |values: &[&str], step: usize| values[(i / step) % values.len()].to_string();
        let release = PressRelease {
            headline: format!("Release {i}: {} news", pick(&words, 1)),
            body: format!("Body {i} about {} and more.", pick(&words, 2)),
            language: pick(&languages, 2),
            channels: vec![pick(&channels, 1)],
            subjects: vec![pick(&subjects, 3)],
            industries: vec![pick(&industries, 5)],
            dateline: Some(Dateline {
                country_code: pick(&countries, 4),
                ..Default::default()
            }),
            issuer: Some(Organization {
                name: pick(&issuers, 7),
                tickers: vec![Ticker {
                    exchange: if i % 2 == 0 { "NASDAQ" } else { "NYSE" }.into(),
                    symbol: if i % 3 == 0 { "ACME" } else { "GLX" }.into(),
                }],
                ..Default::default()
            }),
            publish_time: Some(at(1_800_000_000 + (i as i64) * 60)),
            ..Default::default()
        };
        items
            .send(ImportPressReleasesRequest {
                press_release: Some(release),
                request_id: format!("corpus-{i}"),
            })
            .await?;
    }
    drop(items);
    let imported = import.await??.into_inner();
    assert_eq!(imported.created as usize, count, "{:?}", imported.failed);
    Ok(())
}

/// Waits until search finds every release of the corpus.
async fn searchable(server: &mut TestServer, count: usize) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = server
            .client
            .search_press_releases(SearchPressReleasesRequest {
                query: "release".into(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().total_size as usize);
        match found {
            Ok(total) if total == count => return Ok(()),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return Err(format!("search never caught up: {other:?}").into()),
        }
    }
}

/// The filter a feed's parameters stand for.
fn filter_of(query: &str) -> PressReleaseFilter {
    let mut filter = PressReleaseFilter::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "channel" => filter.channels.push(value),
            "country" => filter.countries.push(value),
            "language" => filter.languages.push(value),
            "issuer" => filter.issuers.push(value),
            "subject" => filter.subjects.push(value),
            "industry" => filter.industries.push(value),
            "ticker" => filter.tickers.push(value),
            _ => {}
        }
    }
    filter
}

/// The value of parameter `name` in `query`.
fn param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn filters_and_queries_show_what_list_and_search_answer() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let count = 130;
    corpus(&mut server, count).await?;
    searchable(&mut server, count).await?;
    let feeds = Feeds::of(&server)?;

    for query in [
        "",
        "limit=5",
        "limit=130",
        "channel=Technology",
        "channel=technology&channel=Health",
        "country=az&language=en",
        "language=fr",
        "issuer=acme%20corp",
        "subject=Earnings&industry=Energy",
        "ticker=ACME",
        "ticker=NYSE:GLX&channel=Business",
        "channel=Nothing",
    ] {
        let limit: usize = param(query, "limit").map_or(Ok(50), |l| l.parse())?;
        let listed = server
            .client
            .list_press_releases(ListPressReleasesRequest {
                filter: Some(filter_of(query)),
                page_size: limit as i32,
                ..Default::default()
            })
            .await?
            .into_inner()
            .press_releases;
        assert_eq!(feeds.names(query).await?, names(&listed), "{query}");
        if query == "channel=Technology" {
            let (rss, _) = feeds.parsed(&format!("/feeds/rss?{query}")).await?;
            let ids: Vec<String> = rss.entries.into_iter().map(|e| e.id).collect();
            assert_eq!(ids, names(&listed), "RSS shows the same releases");
        }
    }

    for query in [
        "q=solar",
        "q=solar%20OR%20wind&channel=Business",
        "q=merger%20-solar",
        "q=headline:wind&limit=3",
        "q=release&limit=120",
        "q=%22solar%20wind%22&country=FR&ticker=ACME",
    ] {
        let limit: usize = param(query, "limit").map_or(Ok(50), |l| l.parse())?;
        let text = param(query, "q").unwrap_or_default();
        let mut searched = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = server
                .client
                .search_press_releases(SearchPressReleasesRequest {
                    query: text.clone(),
                    filter: Some(filter_of(query)),
                    page_size: (limit - searched.len()).min(100) as i32,
                    page_token,
                    order_by: "publish_time desc".into(),
                })
                .await?
                .into_inner();
            searched.extend(page.results.into_iter().filter_map(|r| r.press_release));
            if page.next_page_token.is_empty() || searched.len() >= limit {
                break;
            }
            page_token = page.next_page_token;
        }
        assert!(!searched.is_empty(), "{query} finds something");
        let published: Vec<i64> = searched
            .iter()
            .map(|r| seconds(r.publish_time.as_ref()))
            .collect();
        assert!(
            published.windows(2).all(|w| w[0] > w[1]),
            "{query}: newest first"
        );
        assert_eq!(feeds.names(query).await?, names(&searched), "{query}");
    }
    Ok(())
}

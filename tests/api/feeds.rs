//! The HTTP feeds (RSS, Atom, JSON Feed): the real server with
//! `--feeds-listen` on port 0, asked with a real HTTP client (reqwest), and
//! every answer read back with parsers that are not ours: feed-rs for all
//! three formats, the `rss` crate's validator for RSS 2.0, serde_json
//! against JSON Feed 1.1's required fields. The releases a feed shows are
//! compared with what gRPC List and Search answer for the same filter.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pressroom::proto::v1::{
    Dateline, DeletePressReleaseRequest, ImportPressReleasesRequest, ListPressReleasesRequest,
    MediaAsset, Organization, PressRelease, PressReleaseFilter, SearchPressReleasesRequest, Source,
    Ticker, UpdatePressReleaseRequest, press_release::BodyFormat,
};
use rss::validation::Validate as _;
use serde_json::Value;
use tokio_stream::wrappers::ReceiverStream;

use crate::helpers::{
    TestKeys, TestResult, TestServer, at, create_request, damage_record, from_now, release,
    temp_dir, write_keys,
};

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

#[tokio::test]
async fn every_format_is_a_valid_feed_with_the_mapping() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let full = server
        .client
        .create_press_release(create_request(full_release()))
        .await?
        .into_inner();
    let plain = server
        .client
        .create_press_release(create_request(PressRelease {
            body: "Line one\nline <two>\r\n\r\nPara two & more".into(),
            ..release("Plain text body")
        }))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    let plain_html = "<p>Line one<br>\nline &lt;two&gt;</p>\n<p>Para two &amp; more</p>";

    for format in ["rss", "atom", "json"] {
        let (feed, answer) = feeds.parsed(&format!("/feeds/{format}")).await?;
        let expected_type = match format {
            "rss" => "application/rss+xml; charset=utf-8",
            "atom" => "application/atom+xml; charset=utf-8",
            _ => "application/feed+json; charset=utf-8",
        };
        assert_eq!(answer.header("content-type"), expected_type);
        assert_eq!(feed.entries.len(), 2, "{format}");
        let id = |release: &PressRelease| match format {
            "atom" => format!("urn:uuid:{}", uuid_of(&release.name)),
            _ => release.name.clone(),
        };
        // Newest first.
        let (first, second) = (&feed.entries[0], &feed.entries[1]);
        assert_eq!(first.id, id(&plain), "{format}");
        assert_eq!(second.id, id(&full), "{format}");

        let entry = second;
        let text = |t: &Option<feed_rs::model::Text>| t.as_ref().map(|t| t.content.clone());
        assert_eq!(
            text(&entry.title).as_deref(),
            Some(full.headline.as_str()),
            "{format}"
        );
        assert_eq!(
            text(&entry.summary).as_deref(),
            Some(full.summary.as_str()),
            "{format}"
        );
        let body = entry.content.as_ref().and_then(|c| c.body.as_deref());
        assert_eq!(
            body,
            Some(full.body.as_str()),
            "{format}: the HTML body, intact"
        );
        let plain_body = first.content.as_ref().and_then(|c| c.body.as_deref());
        assert_eq!(plain_body.map(str::trim), Some(plain_html), "{format}");
        // (feed-rs lists JSON Feed attachments as further links.)
        let link = entry.links.first().map(|l| l.href.as_str());
        assert_eq!(link, Some("https://wire.example/item-1"), "{format}");
        let categories: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(
            categories,
            ["Technology", "Business", "Product Launch"],
            "{format}: channels then subjects, each once"
        );
        let authors: Vec<&str> = entry
            .authors
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect();
        assert_eq!(authors, ["Acme Corp"], "{format}");
        assert_eq!(
            entry.published.map(|t| t.timestamp()),
            Some(seconds(full.publish_time.as_ref())),
            "{format}"
        );
        if format != "rss" {
            assert_eq!(
                entry.updated.map(|t| t.timestamp()),
                Some(seconds(full.update_time.as_ref())),
                "{format}"
            );
        }
        if format != "json" {
            assert!(
                answer
                    .text()
                    .contains("<dc:coverage>BAKU, Azerbaijan, Feb. 8</dc:coverage>"),
                "{format}: the dateline"
            );
        }
    }

    // RSS 2.0, checked by the rss crate's validator, with a guid that is
    // not a permalink and content:encoded.
    let rss = feeds.get("/feeds/rss", &[]).await?;
    let channel = rss::Channel::read_from(&rss.body[..])?;
    channel
        .validate()
        .map_err(|e| format!("invalid RSS: {e}\n{}", rss.text()))?;
    let item = &channel.items()[1];
    let guid = item.guid().ok_or("no guid")?;
    assert_eq!(
        (guid.value(), guid.is_permalink()),
        (full.name.as_str(), false)
    );
    assert_eq!(item.content(), Some(full.body.as_str()));
    assert!(
        rss.text().contains("rel=\"self\""),
        "an atom:link to itself"
    );

    // JSON Feed 1.1's required fields, read with serde_json.
    let json: Value = serde_json::from_slice(&feeds.get("/feeds/json", &[]).await?.body)?;
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert!(json["title"].is_string());
    let items = json["items"].as_array().ok_or("items is not an array")?;
    for item in items {
        assert!(item["id"].is_string(), "{item}");
        assert!(
            item["content_html"].is_string() || item["content_text"].is_string(),
            "{item}"
        );
        for date in ["date_published", "date_modified"] {
            let text = item[date].as_str().ok_or(date)?;
            chrono::DateTime::parse_from_rfc3339(text)?;
        }
    }
    let item = &items[1];
    assert_eq!(
        item["_pressroom"]["dateline"]["text"],
        "BAKU, Azerbaijan, Feb. 8"
    );
    assert_eq!(item["_pressroom"]["tickers"][0], "NASDAQ:ACME");
    assert_eq!(
        item["attachments"][0]["url"],
        "https://acme.example/plant.jpg"
    );
    assert_eq!(item["language"], "fr");
    assert_eq!(item["authors"][0]["url"], "https://acme.example");
    Ok(())
}

#[tokio::test]
async fn links_follow_the_public_base_url_and_never_carry_the_key() -> TestResult {
    let (server, keys) = with_keys(&[
        "--feeds-link-base",
        "https://newsroom.example/news",
        "--feeds-max-age",
        "0s",
    ])
    .await;
    let mut publisher = crate::helpers::client_with(server.addr, Some(&keys.publisher)).await;
    let created = publisher
        .create_press_release(create_request(full_release()))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    let path = format!("/feeds/json?channel=Technology&key={}", keys.reader);
    let answer = feeds.get(&path, &[("x-forwarded-proto", "https")]).await?;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), "private, no-cache");
    let json: Value = serde_json::from_slice(&answer.body)?;
    assert_eq!(
        json["items"][0]["url"],
        format!("https://newsroom.example/news/{}", created.name)
    );
    assert_eq!(json["home_page_url"], "https://newsroom.example/news/");
    let feed_url = json["feed_url"].as_str().ok_or("no feed_url")?;
    assert!(feed_url.starts_with("https://"), "{feed_url}");
    assert!(
        feed_url.ends_with("/feeds/json?channel=Technology"),
        "{feed_url}"
    );
    assert!(
        !answer.text().contains(&keys.reader),
        "the key is nowhere in the feed"
    );
    Ok(())
}

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

#[tokio::test]
async fn an_unchanged_feed_is_a_304_until_a_release_is_published() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    server
        .client
        .create_press_release(create_request(release("The first")))
        .await?;
    let feeds = Feeds::of(&server)?;
    let path = "/feeds/rss?language=en";
    let first = feeds.get(path, &[]).await?;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag");
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(first.header("cache-control"), "private, max-age=60");

    let again = feeds.get(path, &[("if-none-match", &etag)]).await?;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    assert_eq!(again.header("cache-control"), "private, max-age=60");
    let other_format = feeds
        .get("/feeds/atom?language=en", &[("if-none-match", &etag)])
        .await?;
    assert_eq!(
        other_format.status,
        StatusCode::OK,
        "each format has its own tag"
    );
    let gzipped = feeds.get(path, &[("accept-encoding", "gzip")]).await?;
    assert_eq!(gzipped.header("content-encoding"), "gzip");
    assert_eq!(gzipped.header("etag"), etag, "the same feed, compressed");
    assert!(gzipped.body.len() < first.body.len());
    let head = feeds.send(reqwest::Method::HEAD, path, &[]).await?;
    assert_eq!(
        (head.status, head.header("etag")),
        (StatusCode::OK, etag.clone())
    );

    // If-Modified-Since alone: a date handed out in the second the feed
    // changed cannot prove anything yet; within a second or two a date
    // that does is handed out, and then it is a 304.
    let deadline = Instant::now() + Duration::from_secs(5);
    let last_modified = loop {
        let date = feeds.get(path, &[]).await?.header("last-modified");
        let answer = feeds.get(path, &[("if-modified-since", &date)]).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            break date;
        }
        assert_eq!(answer.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "If-Modified-Since never matched");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // If-None-Match decides alone when both are sent.
    let both = feeds
        .get(
            path,
            &[
                ("if-none-match", "W/\"other\""),
                ("if-modified-since", &last_modified),
            ],
        )
        .await?;
    assert_eq!(both.status, StatusCode::OK);

    let second = server
        .client
        .create_press_release(create_request(release("The second")))
        .await?
        .into_inner();
    let changed = feeds.get(path, &[("if-none-match", &etag)]).await?;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    assert!(changed.text().contains(&second.name));
    let by_date = feeds
        .get(path, &[("if-modified-since", &last_modified)])
        .await?;
    assert_eq!(
        by_date.status,
        StatusCode::OK,
        "a date never hides a change"
    );

    // A feed with a search query is conditional too.
    let searched = "/feeds/json?q=second";
    let deadline = Instant::now() + Duration::from_secs(10);
    // The index makes a release searchable a moment before it publishes
    // the position it reached, so the first answer that shows the release
    // may still carry the older position (a tag that changes later costs a
    // refetch, never a stale 304): wait for a tag that repeats.
    let mut previous = String::new();
    let tag = loop {
        let answer = feeds.get(searched, &[]).await?;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let tag = answer.header("etag");
        if answer.text().contains(&second.name) && tag == previous {
            break tag;
        }
        previous = tag;
        assert!(Instant::now() < deadline, "never searchable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let repeat = feeds.get(searched, &[("if-none-match", &tag)]).await?;
    assert_eq!(repeat.status, StatusCode::NOT_MODIFIED);
    Ok(())
}

#[tokio::test]
async fn a_304_reads_no_record() -> TestResult {
    // A record damaged on disk fails every read of it; a conditional
    // request for a feed holding it still gets its 304, since deciding
    // reads nothing.
    let mut server = TestServer::start_on_sled_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let damaged = server
        .client
        .create_press_release(create_request(release("Will be damaged")))
        .await?
        .into_inner();
    let path = "/feeds/atom";
    let host = [("host", "feeds.test")];
    let etag = Feeds::of(&server)?.get(path, &host).await?.header("etag");
    let data_dir = server.data_dir();
    let dir = server.stop().await;
    damage_record(&data_dir, &damaged.name)?;
    let server = TestServer::start_in(dir, &["--feeds-listen", "127.0.0.1:0"]).await;
    let feeds = Feeds::of(&server)?;
    let full = feeds.get(path, &host).await?;
    assert_eq!(full.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(full.problem()?["code"], "INTERNAL");
    assert!(
        !full.text().contains("Will be"),
        "no content leaks into the error"
    );
    let conditional = feeds
        .get(path, &[host[0], ("if-none-match", &etag)])
        .await?;
    assert_eq!(conditional.status, StatusCode::NOT_MODIFIED);
    Ok(())
}

#[tokio::test]
async fn embargoed_releases_never_appear_and_withdrawn_ones_leave() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let published = server
        .client
        .create_press_release(create_request(release("Out now")))
        .await?
        .into_inner();
    let embargoed = server
        .client
        .create_press_release(create_request(PressRelease {
            embargo_time: Some(from_now(3)),
            ..release("Not before its time")
        }))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    for format in ["rss", "atom", "json"] {
        let answer = feeds.get(&format!("/feeds/{format}"), &[]).await?;
        let text = answer.text();
        assert!(text.contains(&uuid_of(&published.name)), "{format}");
        assert!(!text.contains(&uuid_of(&embargoed.name)), "{format}");
        assert!(!text.contains("Not before its time"), "{format}");
    }
    let before = feeds.get("/feeds/json", &[]).await?.header("etag");

    // Withdrawn: gone from every feed, and the tag moves.
    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: published.name.clone(),
            reason: "Issued in error".into(),
            ..Default::default()
        })
        .await?;
    let after = feeds
        .get("/feeds/json", &[("if-none-match", &before)])
        .await?;
    assert_eq!(after.status, StatusCode::OK);
    assert!(!after.text().contains(&uuid_of(&published.name)));
    assert_eq!(feeds.names("").await?, Vec::<String>::new());

    // Once its embargo passes, the release appears.
    let deadline = Instant::now() + Duration::from_secs(15);
    while feeds.names("").await? != [embargoed.name.clone()] {
        assert!(
            Instant::now() < deadline,
            "the embargo never lifted in the feed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn updates_show_with_their_new_content() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let created = server
        .client
        .create_press_release(create_request(release("Before the edit")))
        .await?
        .into_inner();
    let feeds = Feeds::of(&server)?;
    let etag = feeds.get("/feeds/atom", &[]).await?.header("etag");
    let updated = server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: created.name.clone(),
                etag: created.etag.clone(),
                headline: "After the edit".into(),
                ..Default::default()
            }),
            update_mask: Some(pressroom::proto::FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    let answer = feeds
        .get("/feeds/atom", &[("if-none-match", &etag)])
        .await?;
    assert_eq!(answer.status, StatusCode::OK);
    let feed = feed_rs::parser::parse(&answer.body[..])?;
    let entry = &feed.entries[0];
    assert_eq!(
        entry.title.as_ref().map(|t| t.content.as_str()),
        Some("After the edit")
    );
    assert_eq!(
        entry.updated.map(|t| t.timestamp()),
        Some(seconds(updated.update_time.as_ref()))
    );
    Ok(())
}

#[tokio::test]
async fn keys_are_enforced_as_for_grpc() -> TestResult {
    let (server, keys) = with_keys(&[]).await;
    let feeds = Feeds::of(&server)?;
    let none = feeds.get("/feeds/rss", &[]).await?;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        "Bearer realm=\"pressroom\""
    );
    assert_eq!(none.problem()?["code"], "UNAUTHENTICATED");
    assert_eq!(none.header("cache-control"), "no-store");
    let wrong = feeds
        .get("/feeds/rss", &[("authorization", "Bearer not-a-key")])
        .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let wrong_param = feeds.get("/feeds/rss?key=not-a-key", &[]).await?;
    assert_eq!(wrong_param.status, StatusCode::UNAUTHORIZED);
    // An unauthenticated caller learns nothing about its parameters.
    let unknown = feeds.get("/feeds/rss?chanel=x", &[]).await?;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    for key in [&keys.reader, &keys.publisher, &keys.admin] {
        let bearer = format!("Bearer {key}");
        let by_header = feeds
            .get("/feeds/atom", &[("authorization", &bearer)])
            .await?;
        assert_eq!(by_header.status, StatusCode::OK, "{}", by_header.text());
        let by_param = feeds.get(&format!("/feeds/json?key={key}"), &[]).await?;
        assert_eq!(by_param.status, StatusCode::OK, "{}", by_param.text());
    }

    // Without keys, feeds are served on loopback only, as gRPC is.
    let refused =
        pressroom::ServeConfig::from_args(["--data-dir", "x", "--feeds-listen", "0.0.0.0:0"])?
            .validate()
            .err()
            .ok_or("an open feeds port without keys was accepted")?;
    assert!(refused.to_string().contains("--feeds-listen"), "{refused}");
    let insecure = pressroom::ServeConfig::from_args([
        "--data-dir",
        "x",
        "--feeds-listen",
        "0.0.0.0:0",
        "--insecure",
    ])?;
    assert!(insecure.validate().is_ok());
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_grpc_message() -> TestResult {
    let mut server = TestServer::start_with(&["--feeds-listen", "127.0.0.1:0"]).await;
    let feeds = Feeds::of(&server)?;

    let bad_filter = feeds
        .get("/feeds/rss?country=USA&language=%3F%3F", &[])
        .await?;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    let grpc = server
        .client
        .list_press_releases(ListPressReleasesRequest {
            filter: Some(PressReleaseFilter {
                countries: vec!["USA".into()],
                languages: vec!["??".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("List accepted a bad filter")?;
    let problem = bad_filter.problem()?;
    assert_eq!(problem["detail"], grpc.message());
    assert_eq!(problem["code"], "INVALID_ARGUMENT");
    assert_eq!(problem["status"], 400);

    let bad_query = feeds.get("/feeds/atom?q=%22unclosed", &[]).await?;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    let grpc = server
        .client
        .search_press_releases(SearchPressReleasesRequest {
            query: "\"unclosed".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("Search accepted a bad query")?;
    assert_eq!(bad_query.problem()?["detail"], grpc.message());

    for (path, status, needle) in [
        ("/feeds/json?chanel=Tech", 400, "chanel"),
        ("/feeds/json?limit=0", 400, "limit"),
        ("/feeds/json?limit=5&limit=6", 400, "only once"),
        ("/feeds/xml", 404, "/feeds/xml"),
        ("/nothing/here", 404, "/feeds/rss"),
    ] {
        let answer = feeds.get(path, &[]).await?;
        assert_eq!(answer.status.as_u16(), status, "{path}");
        let detail = answer.problem()?["detail"].to_string();
        assert!(detail.contains(needle), "{path}: {detail}");
    }
    let posted = feeds.send(reqwest::Method::POST, "/feeds/rss", &[]).await?;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

#[tokio::test]
async fn feeds_share_the_limits_and_show_in_the_metrics() -> TestResult {
    let (server, keys) = with_keys(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--max-concurrent-requests-per-key",
        "1",
    ])
    .await;
    let feeds = Feeds::of(&server)?;
    let reader = format!("Bearer {}", keys.reader);

    // An import that stays open holds the publisher key's only slot: that
    // key's feed requests are refused, other keys' are served.
    let (items, receiver) = tokio::sync::mpsc::channel::<ImportPressReleasesRequest>(1);
    let mut importer = crate::helpers::client_with(server.addr, Some(&keys.publisher)).await;
    let import = tokio::spawn(async move {
        importer
            .import_press_releases(ReceiverStream::new(receiver))
            .await
    });
    items
        .send(ImportPressReleasesRequest {
            press_release: Some(release("held")),
            request_id: String::new(),
        })
        .await?;
    let publisher = format!("Bearer {}", keys.publisher);
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let answer = feeds
            .get("/feeds/json", &[("authorization", &publisher)])
            .await?;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            break answer;
        }
        assert!(Instant::now() < deadline, "the key's limit never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.header("retry-after"), "1");
    let problem = refused.problem()?;
    assert_eq!(problem["code"], "RESOURCE_EXHAUSTED");
    assert!(
        problem["detail"].to_string().contains("ingest"),
        "{problem}"
    );
    let other = feeds
        .get("/feeds/json", &[("authorization", &reader)])
        .await?;
    assert_eq!(other.status, StatusCode::OK);
    drop(items);
    assert_eq!(import.await??.into_inner().created, 1);

    let etag = other.header("etag");
    let not_modified = feeds
        .get(
            "/feeds/json",
            &[("authorization", &reader), ("if-none-match", &etag)],
        )
        .await?;
    // The import committed meanwhile: the tag may have moved once.
    let etag = match not_modified.status {
        StatusCode::NOT_MODIFIED => etag,
        _ => not_modified.header("etag"),
    };
    let not_modified = feeds
        .get(
            "/feeds/json",
            &[("authorization", &reader), ("if-none-match", &etag)],
        )
        .await?;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    let metrics_addr = server.metrics_addr.ok_or("no metrics port")?;
    let scraped = feeds
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |line_start: &str| -> f64 {
        scraped
            .lines()
            .find(|line| line.starts_with(line_start))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    for code in ["200", "304", "429"] {
        let counted = value(&format!(
            "pressroom_feed_requests_total{{format=\"json\",code=\"{code}\"}}"
        ));
        assert!(counted >= 1.0, "{code} not counted:\n{scraped}");
    }
    assert!(
        scraped.contains("pressroom_feed_request_seconds_bucket{format=\"json\""),
        "{scraped}"
    );
    Ok(())
}

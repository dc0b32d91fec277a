//! Each format is a valid feed (read back by parsers that are not ours)
//! with the mapping, and links follow the public base URL and never carry
//! the key.

use http::StatusCode;
use pressroom::proto::v1::PressRelease;
use rss::validation::Validate as _;
use serde_json::Value;

use super::{Feeds, full_release, seconds, uuid_of, with_keys};
use crate::helpers::{TestResult, TestServer, create_request, release};

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

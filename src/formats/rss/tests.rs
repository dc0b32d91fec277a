//! The mapping, on real feeds (GlobeNewswire, a government newsroom) and on
//! made-up items for dates, entities and vendor namespaces.

use super::*;
use crate::proto::v1::{Organization, PressRelease};

const GLOBENEWSWIRE: &[u8] =
    include_bytes!("../../../tests/fixtures/formats/globenewswire-us-2021-02-20.rss");
const GOV_SCOT: &[u8] = include_bytes!("../../../tests/fixtures/formats/gov-scot-news.rss");

fn releases(bytes: &[u8]) -> Vec<PressRelease> {
    let items = parse(bytes, None).unwrap_or_else(|e| panic!("{e}"));
    items
        .into_iter()
        .map(|i| i.release.unwrap_or_else(|why| panic!("{why}")))
        .collect()
}

fn pairs(issuer: &Option<Organization>) -> Vec<String> {
    let issuer = issuer.clone().unwrap_or_default();
    issuer
        .tickers
        .iter()
        .map(|t| format!("{}:{}", t.exchange, t.symbol))
        .chain(
            issuer
                .securities
                .iter()
                .map(|s| format!("{} {}", s.scheme, s.value)),
        )
        .collect()
}

#[test]
fn globenewswire_as_an_editor_reads_it() {
    let all = releases(GLOBENEWSWIRE);
    assert_eq!(all.len(), 5);
    let ebix = &all[1];
    assert_eq!(
        ebix.headline,
        "Ebix Shares Strong Business Outlook and Discusses Recent Events"
    );
    assert_eq!(pairs(&ebix.issuer), ["NASDAQ:EBIX", "ISIN US2787152063"]);
    assert_eq!(
        ebix.issuer.as_ref().map(|i| i.name.as_str()),
        Some("Ebix, Inc."),
        "dc:contributor is the issuer"
    );
    assert_eq!(
        ebix.channels,
        ["Calendar of Events"],
        "no ticker among channels"
    );
    assert_eq!(ebix.keywords, ["India"]);
    assert_eq!(ebix.language, "en");
    let dateline = ebix.dateline.clone().unwrap_or_default();
    assert_eq!(
        (
            dateline.text.as_str(),
            dateline.locality.as_str(),
            dateline.region.as_str(),
            dateline.country_code.as_str()
        ),
        (
            "JOHNS CREEK, Ga., Feb. 19, 2021",
            "Johns Creek",
            "Georgia",
            "US"
        )
    );
    // `Sat, 20 Feb 2021 00:05 GMT`: no seconds; the version is the
    // dc:modified time, a minute later.
    assert_eq!(ebix.publish_time.map(|t| t.seconds), Some(1_613_779_500));
    let source = ebix.source.clone().unwrap_or_default();
    assert_eq!(source.provider, "globenewswire.com");
    assert_eq!(source.version, 1_613_779_560);
    assert!(source.item_id.ends_with(
        "/2179136/0/en/Ebix-Shares-Strong-Business-Outlook-and-Discusses-Recent-Events.html"
    ));
    assert!(ebix.body.starts_with("<p align=\"justify\">JOHNS CREEK"));

    let access = &all[4];
    assert_eq!(
        access.headline,
        "Access-Power & Co., Inc. is pleased to announce the Company has hired Ben Borgers as its PCAOB/CPA Auditor"
    );
    assert_eq!(
        pairs(&access.issuer),
        ["OTHER OTC:ACCR", "ISIN US00431N1081"]
    );
    let dateline = access.dateline.clone().unwrap_or_default();
    assert_eq!(
        (dateline.locality.as_str(), dateline.region.as_str()),
        ("Grand Haven", "Michigan")
    );

    let fsis = &all[2];
    let dateline = fsis.dateline.clone().unwrap_or_default();
    assert_eq!(
        (
            dateline.locality.as_str(),
            dateline.region.as_str(),
            dateline.country_code.as_str()
        ),
        ("Washington", "District of Columbia", "US")
    );
    assert_eq!(
        fsis.issuer.as_ref().map(|i| i.name.as_str()),
        Some("USDA Food Safety and Inspection Service")
    );

    let naropa = &all[3];
    assert_eq!(naropa.media.len(), 1);
    assert_eq!(naropa.media[0].mime_type, "image/jpeg");
    assert_eq!(
        naropa.dateline.as_ref().map(|d| d.region.as_str()),
        Some("Colorado")
    );
    let rail = &all[0];
    assert_eq!(rail.issuer.as_ref().map(|i| i.tickers.len()), Some(0));
    assert_eq!(
        rail.dateline
            .as_ref()
            .map(|d| (d.locality.as_str(), d.country_code.as_str())),
        Some(("Washington", "US"))
    );
}

#[test]
fn a_government_newsroom_feed() {
    let all = releases(GOV_SCOT);
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(
        first.headline,
        "Scotland's future must be decided by the people who live here"
    );
    assert_eq!(first.channels, ["Communities", "Constitution"]);
    assert_eq!(first.language, "en");
    // `Tue, 27 Jun 2017 15:05:00 +0100`
    assert_eq!(first.publish_time.map(|t| t.seconds), Some(1_498_572_300));
    assert!(
        first
            .summary
            .starts_with("First Minister Nicola Sturgeon today gave a statement")
    );
    assert_eq!(
        first.body,
        "<p>We don't need a referendum to leave the EU, we can just leave.</p>"
    );
    assert_eq!(
        first.issuer, None,
        "dc:creator is a CMS user, not an issuer"
    );
    assert_eq!(first.dateline, None, "no wire credit, no dateline");
    let source = first.source.clone().unwrap_or_default();
    assert_eq!(
        (source.provider.as_str(), source.item_id.as_str()),
        ("news.gov.scot", "f5efd7f6-e9e4-4e70-a47c-e8dec8cb0400")
    );
    let second = &all[1];
    assert!(
        second.body.starts_with("GP practices in some of Scotland"),
        "the description is the body"
    );
    assert!(second.body.contains("£4.8 million"));
}

/// An RSS item around the given extra elements and date.
fn feed(item: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prn="http://www.prnewswire.com/rss/ns">
<channel><title>Wire</title><link>https://wire.example/</link><language>en-us</language>
<item><title>Acme R&amp;amp;D opens a lab</title><guid>g-1</guid><description>Text.</description>{item}</item>
</channel></rss>"#
    )
}

#[test]
fn odd_dates_are_read_or_reported_per_item() {
    for (date, seconds) in [
        ("Tue, 01 Oct 2024 13:00:00 UT", 1_727_787_600),
        ("Tue, 01 Oct 2024 09:00:00 EDT", 1_727_787_600),
        ("Mon, 30 Sep 2024 24:00:00 GMT", 1_727_740_800),
        ("Tue, 01 Oct 2024 13:00 +0000", 1_727_787_600),
    ] {
        let items =
            parse(feed(&format!("<pubDate>{date}</pubDate>")).as_bytes(), None).unwrap_or_default();
        let release = items[0].release.clone().unwrap_or_default();
        assert_eq!(
            release.publish_time.map(|t| t.seconds),
            Some(seconds),
            "{date}"
        );
    }
    let items = parse(
        feed("<pubDate>the first of October</pubDate>").as_bytes(),
        None,
    )
    .unwrap_or_default();
    let why = items[0].release.clone().err().unwrap_or_default();
    assert!(
        why.contains("pubDate") && why.contains("the first of October"),
        "{why}"
    );
    let undated = parse(feed("").as_bytes(), None).unwrap_or_default();
    assert_eq!(
        undated[0]
            .release
            .as_ref()
            .ok()
            .and_then(|r| r.publish_time),
        None
    );
    assert!(undated[0].notes.iter().any(|n| n.contains("no date")));
}

#[test]
fn entities_language_and_vendor_namespaces() {
    let items = parse(
        feed(
            "<dc:language>fr</dc:language><prn:industry>BAN</prn:industry>\
             <prn:subject>ERN</prn:subject><prn:company>Acme SA</prn:company>\
             <prn:ticker>EPA:ACME</prn:ticker><prn:isin>US7046991078</prn:isin>\
             <category>NYSE:ACME</category><category>Banking</category>",
        )
        .as_bytes(),
        None,
    )
    .unwrap_or_default();
    let release = items[0].release.clone().unwrap_or_default();
    assert_eq!(release.headline, "Acme R&D opens a lab");
    assert_eq!(
        release.language, "fr",
        "the item's language beats the feed's"
    );
    assert_eq!(release.industries, ["BAN"]);
    assert_eq!(release.subjects, ["ERN"]);
    assert_eq!(release.channels, ["Banking"]);
    assert_eq!(
        pairs(&release.issuer),
        ["NYSE:ACME", "EPA:ACME", "ISIN US7046991078"]
    );
    assert_eq!(release.issuer.map(|i| i.name), Some("Acme SA".to_string()));
}

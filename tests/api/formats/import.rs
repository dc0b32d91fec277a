//! Real wire documents (NewsML-G2, NewsML 1.2, ninjs, RSS) imported by the
//! CLI, checked field by field, and imported again as duplicates.

use pressroom::proto::v1::press_release::State as ReleaseState;

use super::{find, fixture, pressroom, run};
use crate::helpers::{TestResult, TestServer, list_all};

#[tokio::test]
async fn real_wire_documents_import_field_by_field() -> TestResult {
    let mut server = TestServer::start().await;
    let files = [
        "iptc-g2-listing-1-news-item.xml",
        "iptc-g2-listing-2-text-nitf.xml",
        "dpa-g2-with-dateline.xml",
        "dpa-g2-embargoed.xml",
        "businesswire-newsml-1.2-20130731006140.xml",
        "businesswire-ninjs-3.0-20130731006140.json",
        "ntb-ninjs-2.0-text.json",
        "globenewswire-us-2021-02-20.rss",
        "gov-scot-news.rss",
    ];
    let mut command = pressroom(server.addr);
    command.arg("import").args(files.iter().map(|f| fixture(f)));
    let (code, out, err) = run(command).await;
    assert_eq!(code, 4, "one item has no body: {out}{err}");
    assert!(
        out.contains("14 items read: 13 created, 0 duplicates, 1 failed, 0 updated"),
        "{out}"
    );
    assert!(
        out.contains("urn:newsml:acmenews.com:20161018:US-FINANCE-FED: no body"),
        "the failed item is named with its reason: {out}"
    );
    assert!(
        err.contains("no body: its description is the body"),
        "{err}"
    );

    let all = list_all(&mut server.client).await?;
    assert_eq!(all.len(), 13);

    // GlobeNewswire: tickers and the ISIN on the issuer, not channels;
    // the dateline from the lead.
    let ebix = find(&all, "Ebix Shares Strong Business Outlook");
    let issuer = ebix.issuer.clone().unwrap_or_default();
    assert_eq!(issuer.name, "Ebix, Inc.");
    assert_eq!(
        issuer
            .tickers
            .iter()
            .map(|t| format!("{}:{}", t.exchange, t.symbol))
            .collect::<Vec<_>>(),
        ["NASDAQ:EBIX"]
    );
    assert_eq!(issuer.securities.len(), 1);
    assert_eq!(
        (
            issuer.securities[0].scheme.as_str(),
            issuer.securities[0].value.as_str()
        ),
        ("ISIN", "US2787152063")
    );
    assert_eq!(ebix.channels, ["Calendar of Events"]);
    let dateline = ebix.dateline.clone().unwrap_or_default();
    assert_eq!(
        (
            dateline.locality.as_str(),
            dateline.region.as_str(),
            dateline.country_code.as_str()
        ),
        ("Johns Creek", "Georgia", "US")
    );
    assert_eq!(ebix.publish_time.map(|t| t.seconds), Some(1_613_779_500));
    assert!(ebix.body.starts_with("<p") && ebix.body.contains("JOHNS CREEK, Ga."));

    // The filter the issue asked for: by ticker.
    let by_ticker = server
        .client
        .list_press_releases(pressroom::proto::v1::ListPressReleasesRequest {
            filter: Some(pressroom::proto::v1::PressReleaseFilter {
                tickers: vec!["NASDAQ:EBIX".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .press_releases;
    assert_eq!(by_ticker.len(), 1);

    // dpa: German, a dateline, a version; the embargo of 2025 has passed.
    let dpa = find(&all, "DeepSeek-Schock aus China");
    assert_eq!(dpa.language, "de");
    assert_eq!(dpa.subheadline, "Künstliche Intelligenz");
    assert_eq!(
        dpa.source
            .as_ref()
            .map(|s| (s.provider.as_str(), s.version)),
        Some(("dpa", 2))
    );
    assert!(!dpa.body.contains("<script") && dpa.body.contains("<h2>"));
    let embargoed = find(&all, "Steinmeier: Russland zerstört");
    assert_eq!(
        embargoed.embargo_time.map(|t| t.seconds),
        Some(1_737_655_200)
    );
    assert_eq!(embargoed.publish_time, embargoed.embargo_time);
    assert_eq!(embargoed.state(), ReleaseState::Published);

    // Business Wire's NewsML 1.2: dateline, ticker, contacts, media.
    let business_wire = all
        .iter()
        .find(|r| {
            r.source
                .as_ref()
                .is_some_and(|s| s.item_id.starts_with("urn:newsml:businesswire.com"))
        })
        .ok_or("no Business Wire NewsML item")?;
    let dateline = business_wire.dateline.clone().unwrap_or_default();
    assert_eq!(
        (dateline.text.as_str(), dateline.region.as_str()),
        ("KANSAS CITY, Mo.", "Missouri")
    );
    assert_eq!(
        business_wire
            .issuer
            .as_ref()
            .map(|i| (i.name.as_str(), i.tickers[0].symbol.as_str())),
        Some(("Applebee’s", "DIN"))
    );
    assert_eq!(business_wire.contacts.len(), 2);
    assert_eq!(business_wire.media.len(), 9);

    // NTB's ninjs 2.0: Norwegian, description as body.
    let ntb = find(&all, "Google har kjøpt giganttomt i Skien");
    assert_eq!(ntb.language, "nb-NO");
    assert!(ntb.body.starts_with("IT-giganten Google"));

    // A government newsroom.
    let scot = find(&all, "Scotland's future must be decided");
    assert_eq!(scot.channels, ["Communities", "Constitution"]);

    // Importing it all again: nothing new, nothing changed.
    let mut command = pressroom(server.addr);
    command.arg("import").args(files.iter().map(|f| fixture(f)));
    let (_, out, _) = run(command).await;
    assert!(
        out.contains("14 items read: 0 created, 13 duplicates, 1 failed, 0 updated"),
        "{out}"
    );
    Ok(())
}

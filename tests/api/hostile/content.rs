//! The content of a press release to create: every field's rules, each
//! refusal naming its field, through Create and (item by item) Import; and
//! HTML bodies that sanitising could blow up or stall on.

use std::time::Duration;

use pressroom::proto::v1::{
    CreatePressReleaseRequest, Dateline, GetPressReleaseRequest, ImportPressReleasesRequest,
    Organization, PressRelease, Source, Ticker, UpdatePressReleaseRequest,
    press_release::BodyFormat,
};
use tonic::{Code, transport::Channel};

use super::{INVALID, expect_status, sample_release, still_serving, two_releases};
use crate::helpers::{TestResult, TestServer, at, create_request, release};

/// Releases each broken in one field, and what is wrong with each.
fn bad_releases() -> Vec<(&'static str, PressRelease)> {
    let mut bad_releases: Vec<(&str, PressRelease)> = Vec::new();
    let mut add = |what: &'static str, change: &dyn Fn(&mut PressRelease)| {
        let mut release = sample_release(7);
        change(&mut release);
        bad_releases.push((what, release));
    };
    add("blank headline", &|r| r.headline = " \t ".into());
    add("NUL in headline", &|r| r.headline = "Acme\0opens".into());
    add("newline in headline", &|r| {
        r.headline = "Acme\nopens".into()
    });
    add("long headline", &|r| r.headline = "h".repeat(1_001));
    add("empty body", &|r| r.body = String::new());
    add("HTML body empty once sanitised", &|r| {
        r.body = "<script>alert(1)</script>".into()
    });
    add("body format 99", &|r| r.body_format = 99);
    add("body format -1", &|r| r.body_format = -1);
    add("language ??", &|r| r.language = "??".into());
    add("language with NUL", &|r| r.language = "en\0".into());
    add("long language", &|r| r.language = "x".repeat(300));
    add("country USA", &|r| {
        r.dateline = Some(Dateline {
            country_code: "USA".into(),
            ..Default::default()
        })
    });
    add("country NUL", &|r| {
        r.dateline = Some(Dateline {
            country_code: "\0\0".into(),
            ..Default::default()
        })
    });
    add("provider without item", &|r| {
        r.source = Some(Source {
            provider: "wire".into(),
            ..Default::default()
        })
    });
    add("javascript URL", &|r| {
        r.source = Some(Source {
            provider: "wire".into(),
            item_id: "1".into(),
            url: "javascript:alert(1)".into(),
            ..Default::default()
        })
    });
    add("long URL", &|r| {
        r.source = Some(Source {
            provider: "wire".into(),
            item_id: "1".into(),
            url: format!("https://x.example/{}", "a".repeat(3_000)),
            ..Default::default()
        })
    });
    add("ftp website", &|r| {
        r.issuer = Some(Organization {
            name: "Acme".into(),
            website: "ftp://acme.example".into(),
            tickers: Vec::new(),
            ..Default::default()
        })
    });
    add("101 tickers", &|r| {
        r.issuer = Some(Organization {
            name: "Acme".into(),
            website: String::new(),
            tickers: vec![
                Ticker {
                    exchange: "NYSE".into(),
                    symbol: "A".into(),
                };
                101
            ],
            ..Default::default()
        })
    });
    add("ticker exchange with a colon", &|r| {
        r.issuer = Some(Organization {
            name: "Acme".into(),
            website: String::new(),
            tickers: vec![Ticker {
                exchange: "NY:SE".into(),
                symbol: "A".into(),
            }],
            ..Default::default()
        })
    });
    add("101 channels", &|r| r.channels = vec!["c".into(); 101]);
    add("blank channel", &|r| r.channels = vec!["  ".into()]);
    add("NUL channel", &|r| r.channels = vec!["a\0b".into()]);
    add("long keyword", &|r| r.keywords = vec!["k".repeat(300)]);
    add("contact email", &|r| {
        r.contacts = vec![pressroom::proto::v1::Contact {
            email: "not an email".into(),
            ..Default::default()
        }]
    });
    add("media without URL", &|r| {
        r.media = vec![pressroom::proto::v1::MediaAsset::default()]
    });
    for (seconds, nanos) in [
        (i64::MAX, 0),
        (i64::MIN, 0),
        (253_402_300_800, 0),
        (-62_135_596_801, 0),
        (0, -1),
        (0, 1_000_000_000),
        (0, i32::MIN),
    ] {
        let mut time = at(seconds);
        time.nanos = nanos;
        let mut publish = sample_release(7);
        publish.publish_time = Some(time);
        bad_releases.push(("publish time out of range", publish));
        let mut embargo = sample_release(7);
        embargo.embargo_time = Some(time);
        bad_releases.push(("embargo time out of range", embargo));
    }
    bad_releases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_content_is_refused_by_field() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    let bad_releases = bad_releases();
    for (what, release) in &bad_releases {
        let refused = client
            .create_press_release(create_request(release.clone()))
            .await;
        expect_status(&format!("Create with {what}"), refused, INVALID)?;
    }
    let long_request_id = CreatePressReleaseRequest {
        press_release: Some(sample_release(7)),
        request_id: "r".repeat(200),
    };
    let refused = client.create_press_release(long_request_id).await;
    expect_status("Create with a long request id", refused, INVALID)?;
    let no_release = CreatePressReleaseRequest::default();
    let refused = client.create_press_release(no_release).await;
    expect_status("Create with no release", refused, INVALID)?;
    still_serving(&mut client, &created).await
}

/// The same items through an import: each fails by itself, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_import_items_fail_one_by_one_in_order() -> TestResult {
    let (_server, mut client, created, _) = two_releases().await?;
    let bad_releases = bad_releases();
    let items: Vec<ImportPressReleasesRequest> = bad_releases
        .iter()
        .map(|(_, release)| ImportPressReleasesRequest {
            press_release: Some(release.clone()),
            request_id: String::new(),
        })
        .chain([ImportPressReleasesRequest::default()])
        .collect();
    let count = items.len();
    let summary = client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(summary.created, 0, "{summary:?}");
    assert_eq!(summary.failed.len(), count, "{summary:?}");
    for (i, failed) in summary.failed.iter().enumerate() {
        assert_eq!(failed.index, i as i64, "{summary:?}");
        assert_eq!(failed.code, Code::InvalidArgument as i32, "{failed:?}");
    }
    still_serving(&mut client, &created).await
}

/// Sanitising escapes what it keeps (`<` becomes `&lt;`), so an HTML body
/// within the limit can be stored four times larger: past the body limit,
/// after which the release can no longer be updated at all, even to change
/// its headline (and past the 4 MiB a default client accepts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sanitised_body_stays_within_the_body_limit() -> TestResult {
    let server = TestServer::start().await;
    let mut client =
        pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
            server.channel().await,
        )
        .max_decoding_message_size(64 << 20);
    let brackets = PressRelease {
        body: "<".repeat(600_000),
        body_format: BodyFormat::Html as i32,
        ..release("A body of brackets")
    };
    let created = match client.create_press_release(create_request(brackets)).await {
        Err(status) if status.code() == Code::InvalidArgument => return Ok(()),
        other => other?.into_inner(),
    };
    let mut update = UpdatePressReleaseRequest {
        press_release: Some(PressRelease {
            name: created.name.clone(),
            etag: created.etag.clone(),
            headline: "A new headline".into(),
            ..Default::default()
        }),
        update_mask: Some(Default::default()),
    };
    if let Some(mask) = update.update_mask.as_mut() {
        mask.paths = vec!["headline".into()];
    }
    let updated = client.update_press_release(update).await;
    assert!(
        created.body.len() <= pressroom::domain::validate::MAX_BODY_BYTES,
        "a 600,000-byte HTML body was stored as {} bytes; updating the headline then gives {:?}",
        created.body.len(),
        updated.map(drop).map_err(|s| s.message().to_string())
    );
    Ok(())
}

/// Sanitising an HTML body takes time quadratic in its runs of `&` (and of
/// U+00A0), measured at about 1 s for 80 KB and 9 s for 320 KB in a release
/// build; a body of 2 MiB, within the limit, takes minutes. It runs on the
/// async runtime's worker threads, so a couple of such requests stall every
/// call of the server, and the request deadline cannot stop them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_bodies_of_ampersands_do_not_stall_the_server() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data").display().to_string();
    let server = crate::helpers::Binary::serve(&["--data-dir", &data_dir])?;
    let channel = Channel::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await?;
    let client =
        pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(channel);
    let ampersands = PressRelease {
        body: "&".repeat(1_000_000),
        body_format: BodyFormat::Html as i32,
        ..release("A body of ampersands")
    };
    for _ in 0..2 {
        let mut client = client.clone();
        let request = create_request(ampersands.clone());
        tokio::spawn(async move { client.create_press_release(request).await });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut client = client.clone();
    let started = std::time::Instant::now();
    let get = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_press_release(GetPressReleaseRequest {
            name: format!("pressReleases/{}", uuid::Uuid::now_v7()),
        }),
    )
    .await;
    assert!(
        matches!(&get, Ok(Err(status)) if status.code() == Code::NotFound),
        "while two creates sanitise bodies of ampersands, a Get got {get:?} after {:?}",
        started.elapsed()
    );
    Ok(())
}

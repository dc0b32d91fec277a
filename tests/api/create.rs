//! CreatePressRelease and GetPressRelease: output fields, validation,
//! sanitising, idempotency, source uniqueness, concurrency, embargo.

use std::collections::BTreeSet;

use pressroom::proto::v1::{
    Dateline, GetPressReleaseRequest, ListPressReleasesRequest, PressRelease, Source,
    press_release::{BodyFormat, State},
};
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, create_request, from_now, listed_names, release, violated_fields,
};

#[tokio::test]
async fn create_sets_output_fields_and_get_returns_the_same() -> TestResult {
    let mut server = TestServer::start().await;
    let mut input = release("Acme opens a plant");
    input.name = "pressReleases/ignored".into();
    input.revision = 42;
    input.etag = "ignored".into();
    let created = server
        .client
        .create_press_release(create_request(input))
        .await?
        .into_inner();
    let id = created
        .name
        .strip_prefix("pressReleases/")
        .ok_or("name has no collection prefix")?;
    assert_eq!(
        uuid::Uuid::parse_str(id)?.get_version_num(),
        7,
        "ids are UUIDv7"
    );
    assert_eq!(created.revision, 1);
    assert_eq!(created.state(), State::Published);
    assert_eq!(created.body_format(), BodyFormat::PlainText);
    assert!(!created.etag.is_empty() && created.etag != "ignored");
    assert!(created.create_time.is_some());
    assert_eq!(created.update_time, created.create_time);
    assert_eq!(
        created.publish_time, created.create_time,
        "publish time defaults to create time"
    );

    let got = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(got, created);
    Ok(())
}

#[tokio::test]
async fn invalid_input_names_each_field() -> TestResult {
    let mut server = TestServer::start().await;
    let cases: Vec<(PressRelease, Vec<&str>)> = vec![
        (
            PressRelease::default(),
            vec!["press_release.headline", "press_release.body"],
        ),
        (
            PressRelease {
                headline: "x".repeat(1_001),
                ..release("")
            },
            vec!["press_release.headline"],
        ),
        (
            PressRelease {
                body: "y".repeat(2 * 1024 * 1024 + 1),
                ..release("Too long")
            },
            vec!["press_release.body"],
        ),
        (
            PressRelease {
                language: "english please".into(),
                ..release("Bad language")
            },
            vec!["press_release.language"],
        ),
        (
            PressRelease {
                dateline: Some(Dateline {
                    country_code: "ZZ".into(),
                    ..Default::default()
                }),
                ..release("Bad country")
            },
            vec!["press_release.dateline.country_code"],
        ),
        (
            PressRelease {
                source: Some(Source {
                    provider: "wire".into(),
                    ..Default::default()
                }),
                ..release("Half a source")
            },
            vec!["press_release.source.item_id"],
        ),
    ];
    for (input, fields) in cases {
        let status = server
            .client
            .create_press_release(create_request(input))
            .await
            .err()
            .ok_or("expected INVALID_ARGUMENT")?;
        assert_eq!(violated_fields(&status), fields, "{}", status.message());
    }
    let status = server
        .client
        .create_press_release(pressroom::proto::v1::CreatePressReleaseRequest::default())
        .await
        .err()
        .ok_or("a request without a press release must fail")?;
    assert_eq!(violated_fields(&status), ["press_release"]);

    for name in ["", "releases/1", "pressReleases/not-a-uuid"] {
        let status = server
            .client
            .get_press_release(GetPressReleaseRequest { name: name.into() })
            .await
            .err()
            .ok_or("expected INVALID_ARGUMENT")?;
        assert_eq!(violated_fields(&status), ["name"]);
    }
    let missing = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: format!("pressReleases/{}", uuid::Uuid::now_v7()),
        })
        .await
        .err()
        .ok_or("expected NOT_FOUND")?;
    assert_eq!(missing.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn html_bodies_are_sanitised_on_write() -> TestResult {
    let mut server = TestServer::start().await;
    let input = PressRelease {
        body: r#"<p>Hello <a href="https://example.com" onclick="x()">site</a></p><script>steal()</script><img src="javascript:alert(1)">"#.into(),
        body_format: BodyFormat::Html as i32,
        ..release("Sanitised")
    };
    let created = server
        .client
        .create_press_release(create_request(input))
        .await?
        .into_inner();
    assert!(
        created
            .body
            .contains("<p>Hello <a href=\"https://example.com\""),
        "{}",
        created.body
    );
    for gone in ["script", "steal", "onclick", "javascript:"] {
        assert!(
            !created.body.contains(gone),
            "{gone} survived: {}",
            created.body
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_retried_create_returns_the_first_release() -> TestResult {
    let mut server = TestServer::start().await;
    let request = pressroom::proto::v1::CreatePressReleaseRequest {
        press_release: Some(release("Retried")),
        request_id: "5f0c2a4e-2d0b-4c55-9a3e-6c1f0b7a9d10".into(),
    };
    let first = server
        .client
        .create_press_release(request.clone())
        .await?
        .into_inner();
    let again = server
        .client
        .create_press_release(request.clone())
        .await?
        .into_inner();
    assert_eq!(again, first);
    // Even with other content: the request id decides.
    let mut changed = request.clone();
    changed.press_release = Some(release("Retried with other content"));
    let third = server
        .client
        .create_press_release(changed)
        .await?
        .into_inner();
    assert_eq!(third, first);
    let listed = server
        .client
        .list_press_releases(ListPressReleasesRequest::default())
        .await?
        .into_inner();
    assert_eq!(listed.press_releases.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_source_is_unique() -> TestResult {
    let mut server = TestServer::start().await;
    let sourced = |headline: &str| PressRelease {
        source: Some(Source {
            provider: "ein-presswire".into(),
            item_id: "688361234".into(),
            url: "https://www.einpresswire.com/article/688361234".into(),
            ..Default::default()
        }),
        ..release(headline)
    };
    let first = server
        .client
        .create_press_release(create_request(sourced("Original")))
        .await?
        .into_inner();
    let same = server
        .client
        .create_press_release(create_request(sourced("Original")))
        .await?
        .into_inner();
    assert_eq!(
        same, first,
        "the same source and content returns the existing release"
    );
    let clash = server
        .client
        .create_press_release(create_request(sourced("Different content")))
        .await
        .err()
        .ok_or("expected ALREADY_EXISTS")?;
    assert_eq!(clash.code(), Code::AlreadyExists);
    assert!(clash.message().contains(&first.name), "{}", clash.message());
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_creates_are_all_visible() -> TestResult {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut client = server.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .create_press_release(create_request(release(&format!("Concurrent {i}"))))
                .await
                .map(|r| r.into_inner().name)
        }));
    }
    let mut created = BTreeSet::new();
    for task in tasks {
        created.insert(task.await??);
    }
    assert_eq!(created.len(), 50);
    let mut client = server.client.clone();
    let listed: BTreeSet<String> = client
        .list_press_releases(ListPressReleasesRequest {
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner()
        .press_releases
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(listed, created);
    Ok(())
}

#[tokio::test]
async fn an_embargoed_release_is_stored_but_not_listed() -> TestResult {
    let mut server = TestServer::start().await;
    let embargo = from_now(3_600);
    let input = PressRelease {
        embargo_time: Some(embargo),
        ..release("Results at nine")
    };
    let created = server
        .client
        .create_press_release(create_request(input))
        .await?
        .into_inner();
    assert_eq!(created.state(), State::Embargoed);
    assert_eq!(
        created.publish_time,
        Some(embargo),
        "publish time defaults to the embargo"
    );
    let visible = server
        .client
        .create_press_release(create_request(release("Visible")))
        .await?
        .into_inner();
    assert_eq!(listed_names(&mut server.client).await?, [visible.name]);
    let got = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(got.state(), State::Embargoed);

    // An embargo already in the past publishes at once.
    let past = PressRelease {
        embargo_time: Some(from_now(-60)),
        ..release("Already lifted")
    };
    let created = server
        .client
        .create_press_release(create_request(past))
        .await?
        .into_inner();
    assert_eq!(created.state(), State::Published);
    Ok(())
}

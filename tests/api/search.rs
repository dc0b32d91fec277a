//! SearchPressReleases: ranking, the query language, filters, paging,
//! freshness, and the index as a reader of the change log.

use std::time::{Duration, Instant};

use pressroom::proto::FieldMask;
use pressroom::{
    proto::v1::{
        DeletePressReleaseRequest, Organization, PressRelease, PressReleaseFilter,
        SearchPressReleasesRequest, SearchPressReleasesResponse, UpdatePressReleaseRequest,
        press_release::State, press_release_service_client::PressReleaseServiceClient,
    },
    store::{Change, NewRelease, SledStore},
};
use tonic::{Code, Status, transport::Channel};

use crate::helpers::{TestResult, TestServer, create_request, from_now, release, violated_fields};

async fn search(
    client: &mut PressReleaseServiceClient<Channel>,
    query: &str,
    filter: Option<PressReleaseFilter>,
    page_size: i32,
    page_token: &str,
) -> Result<SearchPressReleasesResponse, Status> {
    client
        .search_press_releases(SearchPressReleasesRequest {
            query: query.into(),
            filter,
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn headlines(response: &SearchPressReleasesResponse) -> Vec<String> {
    response
        .results
        .iter()
        .map(|r| {
            r.press_release
                .as_ref()
                .map(|p| p.headline.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Searches until `done` holds for the answer, for at most `within`.
async fn search_until(
    client: &mut PressReleaseServiceClient<Channel>,
    query: &str,
    within: Duration,
    done: impl Fn(&SearchPressReleasesResponse) -> bool,
) -> Result<SearchPressReleasesResponse, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + within;
    loop {
        match search(client, query, None, 50, "").await {
            Ok(response) if done(&response) => return Ok(response),
            Ok(_) => {}
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => return Err(status.into()),
        }
        if Instant::now() > deadline {
            return Err(format!("search for {query:?} did not settle within {within:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn doc(headline: &str, body: &str, issuer: &str, channel: &str) -> PressRelease {
    PressRelease {
        body: body.into(),
        issuer: Some(Organization {
            name: issuer.into(),
            ..Default::default()
        }),
        channels: vec![channel.into()],
        ..release(headline)
    }
}

async fn corpus(server: &mut TestServer) -> TestResult {
    let filler = "The company reported results for the quarter and thanked its customers. ";
    for input in [
        doc(
            "Acme opens solar panel factory in Texas",
            &filler.repeat(3),
            "Acme Corp",
            "Energy",
        ),
        doc(
            "Quarterly update from Globex",
            &format!(
                "{} solar {} panel {} factory {}",
                filler.repeat(2),
                filler,
                filler,
                filler
            ),
            "Globex",
            "Business",
        ),
        doc(
            "Initech builds a wind farm",
            &filler.repeat(2),
            "Initech",
            "Energy",
        ),
        doc(
            "Umbrella tests tidal power",
            &format!("{filler} The tidal plant is recalled."),
            "Umbrella",
            "Energy",
        ),
    ] {
        server
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    search_until(&mut server.client, "results", Duration::from_secs(5), |r| {
        r.total_size == 4
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn ranking_and_the_query_language() -> TestResult {
    let mut server = TestServer::start().await;
    corpus(&mut server).await?;
    let client = &mut server.client;

    let ranked = search(client, "solar panel factory", None, 0, "").await?;
    assert_eq!(
        headlines(&ranked),
        [
            "Acme opens solar panel factory in Texas",
            "Quarterly update from Globex"
        ],
        "a headline match ranks above the same words scattered in a body"
    );
    assert!(ranked.results[0].score > ranked.results[1].score);
    let highlight = &ranked.results[0].highlights[0];
    assert_eq!(highlight.field, "headline");
    assert!(
        highlight
            .snippet
            .contains("<mark>solar</mark> <mark>panel</mark>"),
        "{highlight:?}"
    );
    let body_highlight = ranked.results[1]
        .highlights
        .iter()
        .find(|h| h.field == "body")
        .ok_or("no body highlight")?;
    assert!(
        body_highlight.snippet.contains("<mark>"),
        "{body_highlight:?}"
    );

    let phrase = search(client, "\"solar panel factory\"", None, 0, "").await?;
    assert_eq!(
        headlines(&phrase),
        ["Acme opens solar panel factory in Texas"]
    );
    let either = search(client, "wind OR tidal", None, 0, "").await?;
    assert_eq!(either.total_size, 2);
    let excluded = search(
        client,
        "energy OR power OR wind OR solar -recalled",
        None,
        0,
        "",
    )
    .await?;
    assert!(
        !headlines(&excluded).iter().any(|h| h.contains("tidal")),
        "{:?}",
        headlines(&excluded)
    );
    let in_headline = search(client, "headline:factory", None, 0, "").await?;
    assert_eq!(
        headlines(&in_headline),
        ["Acme opens solar panel factory in Texas"]
    );
    let in_body = search(client, "body:factory", None, 0, "").await?;
    assert_eq!(headlines(&in_body), ["Quarterly update from Globex"]);
    let by_issuer = search(client, "issuer:initech", None, 0, "").await?;
    assert_eq!(headlines(&by_issuer), ["Initech builds a wind farm"]);
    let stemmed = search(client, "builds farms", None, 0, "").await?;
    assert_eq!(
        headlines(&stemmed),
        ["Initech builds a wind farm"],
        "English stemming"
    );

    let filtered = search(
        client,
        "results",
        Some(PressReleaseFilter {
            channels: vec!["energy".into()],
            ..Default::default()
        }),
        0,
        "",
    )
    .await?;
    assert_eq!(filtered.total_size, 3, "the filter narrows as for List");

    for (query, position) in [
        ("acme \"solar", "position 5"),
        ("color:red", "position 0"),
        ("acme OR", "position 5"),
    ] {
        let status = search(client, query, None, 0, "")
            .await
            .err()
            .ok_or("malformed query accepted")?;
        assert_eq!(violated_fields(&status), ["query"]);
        assert!(
            status.message().contains(position),
            "{query:?}: {}",
            status.message()
        );
    }
    Ok(())
}

#[tokio::test]
async fn paging_through_results() -> TestResult {
    let mut server = TestServer::start().await;
    for i in 0..25 {
        server
            .client
            .create_press_release(create_request(release(&format!("Harvest report {i}"))))
            .await?;
    }
    search_until(&mut server.client, "harvest", Duration::from_secs(5), |r| {
        r.total_size == 25
    })
    .await?;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = search(&mut server.client, "harvest", None, 10, &token).await?;
        assert_eq!(page.total_size, 25);
        seen.extend(headlines(&page));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "no result twice");
    let first = search(&mut server.client, "harvest", None, 10, "").await?;
    let other = search(
        &mut server.client,
        "report",
        None,
        10,
        &first.next_page_token,
    )
    .await
    .err()
    .ok_or("token for another query")?;
    assert_eq!(violated_fields(&other), ["page_token"]);
    Ok(())
}

#[tokio::test]
async fn ordered_newest_first_on_request() -> TestResult {
    let mut server = TestServer::start().await;
    for i in 0..12 {
        server
            .client
            .create_press_release(create_request(PressRelease {
                // Older releases rank higher: the word twice in the headline.
                publish_time: Some(crate::helpers::at(1_800_000_000 + i * 60)),
                ..release(&format!(
                    "Harvest {} {i}",
                    if i < 6 { "harvest" } else { "" }
                ))
            }))
            .await?;
    }
    search_until(&mut server.client, "harvest", Duration::from_secs(5), |r| {
        r.total_size == 12
    })
    .await?;
    let newest = |page_token: String| SearchPressReleasesRequest {
        query: "harvest".into(),
        page_size: 5,
        page_token,
        order_by: "publish_time desc".into(),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .client
            .search_press_releases(newest(token))
            .await?
            .into_inner();
        seen.extend(page.results.into_iter().filter_map(|r| r.press_release));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let times: Vec<i64> = seen
        .iter()
        .map(|r| r.publish_time.map_or(0, |t| t.seconds))
        .collect();
    let expected: Vec<i64> = (0..12).rev().map(|i| 1_800_000_000 + i * 60).collect();
    assert_eq!(times, expected, "every match, newest first");
    let by_score = search(&mut server.client, "harvest", None, 1, "").await?;
    assert!(
        headlines(&by_score)[0].contains("harvest"),
        "relevance stays the default"
    );

    // A token is bound to its order, and only two orders exist.
    let first = server
        .client
        .search_press_releases(newest(String::new()))
        .await?
        .into_inner();
    let mixed = search(
        &mut server.client,
        "harvest",
        None,
        5,
        &first.next_page_token,
    )
    .await
    .err()
    .ok_or("a token of another order")?;
    assert_eq!(violated_fields(&mixed), ["page_token"]);
    let unknown = server
        .client
        .search_press_releases(SearchPressReleasesRequest {
            query: "harvest".into(),
            order_by: "headline".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("an unknown order")?;
    assert_eq!(violated_fields(&unknown), ["order_by"]);
    Ok(())
}

#[tokio::test]
async fn the_index_follows_withdrawals_updates_and_embargoes() -> TestResult {
    let mut server = TestServer::start().await;
    let started = Instant::now();
    let created = server
        .client
        .create_press_release(create_request(release("Zephyr launches a glider")))
        .await?
        .into_inner();
    search_until(&mut server.client, "glider", Duration::from_secs(2), |r| {
        r.total_size == 1
    })
    .await?;
    assert!(started.elapsed() < Duration::from_secs(3));

    let updated = server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: created.name.clone(),
                etag: created.etag.clone(),
                headline: "Zephyr launches a balloon".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["headline".into()],
            }),
        })
        .await?
        .into_inner();
    search_until(
        &mut server.client,
        "headline:balloon",
        Duration::from_secs(2),
        |r| r.total_size == 1,
    )
    .await?;
    search_until(
        &mut server.client,
        "headline:glider",
        Duration::from_secs(2),
        |r| r.total_size == 0,
    )
    .await?;

    server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: updated.name.clone(),
            ..Default::default()
        })
        .await?;
    search_until(&mut server.client, "balloon", Duration::from_secs(2), |r| {
        r.total_size == 0
    })
    .await?;

    let embargoed = PressRelease {
        embargo_time: Some(from_now(2)),
        ..release("Secret zeppelin plans")
    };
    server
        .client
        .create_press_release(create_request(embargoed))
        .await?;
    let other = server
        .client
        .create_press_release(create_request(release("Public zeppelin museum")))
        .await?
        .into_inner();
    let before = search_until(
        &mut server.client,
        "zeppelin",
        Duration::from_secs(2),
        |r| r.total_size >= 1,
    )
    .await?;
    assert_eq!(
        headlines(&before),
        std::slice::from_ref(&other.headline),
        "not found before its time"
    );
    let after = search_until(
        &mut server.client,
        "zeppelin",
        Duration::from_secs(5),
        |r| r.total_size == 2,
    )
    .await?;
    let secret = after
        .results
        .iter()
        .find(|r| {
            r.press_release
                .as_ref()
                .is_some_and(|p| p.headline.contains("Secret"))
        })
        .ok_or("missing")?;
    assert_eq!(
        secret.press_release.as_ref().map(|p| p.state()),
        Some(State::Published)
    );
    Ok(())
}

#[tokio::test]
async fn restarts_catch_up_and_a_lost_index_is_rebuilt() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    corpus(&mut server).await?;
    let before = search(&mut server.client, "results OR solar OR wind", None, 0, "").await?;
    let data_dir = server.data_dir();
    let dir = server.stop().await;

    // A change the index has not seen: written while the server is down.
    {
        let store = SledStore::open(&data_dir.join("store"), 16 << 20)?;
        let id = uuid::Uuid::now_v7();
        let now = pressroom::proto::now();
        let release = PressRelease {
            name: format!("pressReleases/{id}"),
            state: State::Published as i32,
            publish_time: Some(now),
            create_time: Some(now),
            update_time: Some(now),
            revision: 1,
            etag: "offline".into(),
            ..release("Offline quokka sighting")
        };
        store.commit(
            vec![Change::Create(NewRelease {
                id,
                release,
                request_id: None,
                source: None,
                fingerprint: Vec::new(),
            })],
            Some(now),
        )?;
    }
    let mut server = TestServer::start_in(dir, &[]).await;
    let caught_up = search_until(&mut server.client, "quokka", Duration::from_secs(5), |r| {
        r.total_size == 1
    })
    .await?;
    assert_eq!(headlines(&caught_up), ["Offline quokka sighting"]);
    let data_dir = server.data_dir();
    let dir = server.stop().await;

    std::fs::remove_dir_all(data_dir.join("search"))?;
    let mut server = TestServer::start_in(dir, &[]).await;
    let rebuilt = search_until(
        &mut server.client,
        "results OR solar OR wind",
        Duration::from_secs(10),
        |r| r.total_size == before.total_size,
    )
    .await?;
    assert_eq!(
        headlines(&rebuilt),
        headlines(&before),
        "the same results after a rebuild"
    );
    Ok(())
}

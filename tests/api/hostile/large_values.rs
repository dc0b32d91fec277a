//! Values large enough that echoing them back in a refusal could break the
//! connection.

use pressroom::proto::v1::{
    GetPressReleaseRequest, GetPressReleaseStatsRequest, ListPressReleasesRequest, PressRelease,
    PressReleaseFilter, UpdatePressReleaseRequest,
};
use tonic::Code;

use crate::helpers::{TestResult, TestServer, create_request, release};

/// Refusals echo what was sent (`got "..."`) once per violation, in the
/// status message and again in its `BadRequest` details; past about 16 KiB
/// of trailers a default client (hyper) drops the whole connection
/// (GOAWAY), so the caller gets a transport error instead of
/// INVALID_ARGUMENT, and so does every other call on that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_large_values_keep_the_connection() -> TestResult {
    let server = TestServer::start().await;
    let long = |c: &str, n: usize| c.repeat(n);
    let mut mask = UpdatePressReleaseRequest {
        press_release: Some(PressRelease {
            name: format!("pressReleases/{}", uuid::Uuid::now_v7()),
            etag: "e".into(),
            ..Default::default()
        }),
        update_mask: Some(Default::default()),
    };
    if let Some(mask) = mask.update_mask.as_mut() {
        mask.paths = vec![long("p", 20_000)];
    }
    let emails = PressRelease {
        contacts: vec![
            pressroom::proto::v1::Contact {
                email: long("e", 256),
                ..Default::default()
            };
            100
        ],
        ..release("Many contacts")
    };
    let language = PressRelease {
        language: long("l", 20_000),
        ..release("A long language")
    };
    let languages = PressReleaseFilter {
        languages: vec![long("x", 256); 100],
        ..Default::default()
    };
    let countries = PressReleaseFilter {
        countries: vec!["ZZ".into(); 100],
        ..Default::default()
    };
    let mut failures = Vec::new();
    for case in 0..7 {
        // A connection of its own, checked again after the refusal.
        let mut client = server.new_client().await;
        let (what, result) = match case {
            0 => (
                "a 20,000-character name",
                client
                    .get_press_release(GetPressReleaseRequest {
                        name: format!("pressReleases/{}", long("x", 20_000)),
                    })
                    .await
                    .map(drop),
            ),
            1 => (
                "a 20,000-character mask path",
                client.update_press_release(mask.clone()).await.map(drop),
            ),
            2 => (
                "a 20,000-character histogram day",
                client
                    .get_press_release_stats(GetPressReleaseStatsRequest {
                        histogram_start_day: long("d", 20_000),
                        histogram_end_day: "2026-01-01".into(),
                        ..Default::default()
                    })
                    .await
                    .map(drop),
            ),
            3 => (
                "100 contacts with 256-character emails (each within limits)",
                client
                    .create_press_release(create_request(emails.clone()))
                    .await
                    .map(drop),
            ),
            4 => (
                "a 20,000-character language",
                client
                    .create_press_release(create_request(language.clone()))
                    .await
                    .map(drop),
            ),
            5 => (
                "a filter of 100 languages of 256 characters (each within limits)",
                client
                    .list_press_releases(ListPressReleasesRequest {
                        filter: Some(languages.clone()),
                        ..Default::default()
                    })
                    .await
                    .map(drop),
            ),
            _ => (
                "a filter of 100 unknown two-letter countries",
                client
                    .list_press_releases(ListPressReleasesRequest {
                        filter: Some(countries.clone()),
                        ..Default::default()
                    })
                    .await
                    .map(drop),
            ),
        };
        let refused = matches!(&result, Err(s) if s.code() == Code::InvalidArgument);
        let still_up = client
            .list_press_releases(ListPressReleasesRequest::default())
            .await
            .is_ok();
        if !refused || !still_up {
            failures.push(format!(
                "{what}: {:?}; the connection {}",
                result.map_err(|s| (s.code(), s.message().chars().take(120).collect::<String>())),
                if still_up { "survived" } else { "broke" }
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

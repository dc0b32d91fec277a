//! ImportPressReleases: counts, errors by index, idempotency, durability.

use pressroom::proto::v1::{ImportPressReleasesRequest, PressRelease, Source};
use tonic::Code;

use crate::helpers::{TestResult, TestServer, list_all, release};

fn sourced(i: usize, headline: &str) -> PressRelease {
    PressRelease {
        source: Some(Source {
            provider: "wire".into(),
            item_id: format!("item-{i}"),
            url: String::new(),
            ..Default::default()
        }),
        ..release(headline)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Item {
    Plain,
    /// No headline.
    Invalid,
    /// The same source and content as the plain item 100 before.
    Duplicate,
    /// The same source as the plain item 200 before, other content.
    Conflict,
}

fn item_kind(i: usize) -> Item {
    if i % 97 == 13 {
        Item::Invalid
    } else if i % 101 == 50 && i > 100 && item_kind(i - 100) == Item::Plain {
        Item::Duplicate
    } else if i % 103 == 70 && i > 200 && item_kind(i - 200) == Item::Plain {
        Item::Conflict
    } else {
        Item::Plain
    }
}

#[tokio::test]
async fn importing_ten_thousand_with_bad_and_duplicate_items() -> TestResult {
    let mut server = TestServer::start().await;
    let mut items = Vec::new();
    let mut invalid = Vec::new();
    let mut conflicting = Vec::new();
    let mut duplicates = 0;
    for i in 0..10_000usize {
        let item = match item_kind(i) {
            Item::Invalid => {
                invalid.push(i as i64);
                PressRelease {
                    headline: String::new(),
                    ..release("no headline")
                }
            }
            Item::Duplicate => {
                duplicates += 1;
                sourced(i - 100, &format!("item {}", i - 100))
            }
            Item::Conflict => {
                conflicting.push(i as i64);
                sourced(i - 200, "different content")
            }
            Item::Plain => sourced(i, &format!("item {i}")),
        };
        items.push(ImportPressReleasesRequest {
            press_release: Some(item),
            request_id: String::new(),
        });
    }
    let response = server
        .client
        .import_press_releases(tokio_stream::iter(items.clone()))
        .await?
        .into_inner();
    let failed: Vec<i64> = response.failed.iter().map(|f| f.index).collect();
    let mut expected_failed: Vec<i64> = invalid.iter().chain(&conflicting).copied().collect();
    expected_failed.sort_unstable();
    assert_eq!(failed, expected_failed);
    for failure in &response.failed {
        let expected = if invalid.contains(&failure.index) {
            Code::InvalidArgument
        } else {
            Code::AlreadyExists
        };
        assert_eq!(failure.code, expected as i32, "{failure:?}");
        if expected == Code::InvalidArgument {
            assert!(
                failure.message.contains("press_release.headline"),
                "{failure:?}"
            );
        }
    }
    let created = 10_000 - invalid.len() as i64 - conflicting.len() as i64 - duplicates;
    assert_eq!(response.duplicates, duplicates);
    assert_eq!(response.created, created);

    // Everything counted as created is there.
    let listed = list_all(&mut server.client).await?;
    assert_eq!(listed.len() as i64, created);

    // Importing the same items again creates nothing new.
    let again = server
        .client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(again.created, 0);
    assert_eq!(again.duplicates, created + duplicates);
    assert_eq!(again.failed.len(), expected_failed.len());
    Ok(())
}

#[tokio::test]
async fn request_ids_make_an_import_idempotent() -> TestResult {
    let mut server = TestServer::start().await;
    let items: Vec<_> = (0..50)
        .map(|i| ImportPressReleasesRequest {
            press_release: Some(release(&format!("unsourced {i}"))),
            request_id: format!("batch-1/{i}"),
        })
        .collect();
    let first = server
        .client
        .import_press_releases(tokio_stream::iter(items.clone()))
        .await?
        .into_inner();
    assert_eq!((first.created, first.duplicates), (50, 0));
    let second = server
        .client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!((second.created, second.duplicates), (0, 50));
    Ok(())
}

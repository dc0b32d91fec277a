//! What the fuzz targets found, kept as tests with the inputs they found.

use pressroom::{
    domain::validate,
    proto::v1::{PressRelease, UpdatePressReleaseRequest, press_release::BodyFormat},
};

use super::checks;
use crate::helpers::{TestResult, TestServer, create_request, release};

/// `update_request`, fuzz/artifacts/update_request/crash-a0fdc100…: a
/// patch whose HTML body holds `&#13` (a carriage return) and NULs.
const UPDATE_CR_REFERENCE: [u8; 72] = [
    0x0a, 0x46, 0x6a, 0x32, 0x70, 0x72, 0x65, 0x73, 0x73, 0x52, 0x65, 0x6e, 0x65, 0x61, 0x73, 0x73,
    0x30, 0x2f, 0x32, 0x65, 0x2d, 0x31, 0x32, 0xd0, 0xa1, 0x64, 0x65, 0x32, 0x38, 0x35, 0x36, 0x2d,
    0x37, 0x37, 0x31, 0x35, 0x2d, 0x42, 0x62, 0x32, 0x73, 0x2f, 0x73, 0x2f, 0x30, 0x31, 0x21, 0x32,
    0x31, 0x69, 0x64, 0x39, 0x2d, 0x38, 0xba, 0x01, 0x01, 0x44, 0x32, 0x0c, 0x26, 0x23, 0x31, 0x33,
    0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x65,
];

/// `update_request`, crash-17b94fa0…: an element that sanitising strips
/// leaves one heading directly inside another, which the next parse
/// splits in two.
const UPDATE_NESTED_HEADINGS: [u8; 72] = [
    0x0a, 0x46, 0x32, 0x32, 0x3e, 0xef, 0xbf, 0xbd, 0x3b, 0x3c, 0x68, 0x32, 0x2f, 0x3e, 0x48, 0x3c,
    0x73, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0x20, 0x61, 0x20, 0x3c, 0x3e, 0xef, 0xbf,
    0xbd, 0x3b, 0x3c, 0x68, 0x32, 0x2f, 0x3e, 0x48, 0x3c, 0x73, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x14, 0x20, 0x61, 0x20, 0x38, 0xba, 0x01, 0x01, 0x0a, 0x0a, 0x0c, 0x00, 0x00, 0x3a, 0x20,
    0x68, 0x61, 0x65, 0x64, 0x6c, 0x6d, 0x6e, 0x65,
];

/// The first, minimised by hand: a patch with the HTML body `&#13e`.
const UPDATE_CR_REFERENCE_MINIMAL: [u8; 9] = [0x0a, 0x07, 0x32, 0x05, 0x26, 0x23, 0x31, 0x33, 0x65];

#[test]
fn update_request_with_a_carriage_return_reference() {
    checks::update_request(&UPDATE_CR_REFERENCE);
    checks::update_request(&UPDATE_CR_REFERENCE_MINIMAL);
}

#[test]
fn update_request_with_nested_headings() {
    checks::update_request(&UPDATE_NESTED_HEADINGS);
}

#[test]
fn sanitising_a_sanitised_body_changes_nothing() -> Result<(), pressroom::domain::DomainError> {
    let mut changed = Vec::new();
    for body in ["<p>one&#13;two</p>", "<h2>one<x><h2>two"] {
        let mut release = PressRelease {
            body: body.into(),
            body_format: BodyFormat::Html as i32,
            ..release("Sanitised twice")
        };
        validate::check_content(&mut release)?;
        let once = release.body.clone();
        validate::check_content(&mut release)?;
        if release.body != once {
            changed.push(format!("{body:?}: once {once:?}, twice {:?}", release.body));
        }
    }
    assert!(changed.is_empty(), "{changed:#?}");
    Ok(())
}

/// What the caller sees: an update that names only the headline changes
/// the body too (every update sanitises the whole record again).
#[tokio::test]
async fn an_update_leaves_the_body_it_does_not_name_alone() -> TestResult {
    let mut server = TestServer::start().await;
    let created = server
        .client
        .create_press_release(create_request(PressRelease {
            body: "<p>one&#13;two</p>".into(),
            body_format: BodyFormat::Html as i32,
            ..release("A carriage return")
        }))
        .await?
        .into_inner();
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
    let updated = server
        .client
        .update_press_release(update)
        .await?
        .into_inner();
    assert_eq!(updated.body, created.body, "the body changed");
    server.stop_in_place().await;
    Ok(())
}

//! Resource names that are not `pressReleases/{uuid}`: refused by Get and
//! Delete as INVALID_ARGUMENT naming the field; an unknown one is NOT_FOUND.

use pressroom::proto::v1::{DeletePressReleaseRequest, GetPressReleaseRequest};
use tonic::Code;

use super::{INVALID, expect_status, random_text, still_serving, two_releases};
use crate::helpers::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_names_are_refused_by_name() -> TestResult {
    let (_server, mut client, created, mut rng) = two_releases().await?;
    let id = created
        .name
        .trim_start_matches("pressReleases/")
        .to_string();
    let mut names = vec![
        String::new(),
        "bad".into(),
        "pressReleases/".into(),
        format!("pressReleases/{}", id.to_uppercase()),
        format!("pressReleases/{id}\0"),
        format!("pressReleases/{id}/extra"),
        format!("pressReleases/{{{id}}}"),
        format!("pressReleases/{}", id.replace('-', "")),
        format!("urn:uuid:{id}"),
        "pressReleases/../../etc/passwd".into(),
        "pressReleases/😀".into(),
    ];
    names.extend((0..200).map(|_| random_text(&mut rng, 48)));
    for name in &names {
        let what = format!("Get {:?}", &name[..name.len().min(60)]);
        let got = client
            .get_press_release(GetPressReleaseRequest { name: name.clone() })
            .await;
        expect_status(&what, got, INVALID)?;
        let deleted = client
            .delete_press_release(DeletePressReleaseRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await;
        expect_status(&format!("Delete {what}"), deleted, INVALID)?;
    }
    let unknown = format!("pressReleases/{}", uuid::Uuid::now_v7());
    let got = client
        .get_press_release(GetPressReleaseRequest { name: unknown })
        .await;
    expect_status("Get of an unknown release", got, &[Code::NotFound])?;
    still_serving(&mut client, &created).await
}

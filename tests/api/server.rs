//! The server around the service: health, reflection, restarts on the same
//! data dir, and a bounded graceful shutdown.

use std::time::Duration;

use pressroom::{
    proto::v1::{
        DeletePressReleaseRequest, GetPressReleaseRequest, PressRelease, UpdatePressReleaseRequest,
    },
    store::SledStore,
};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{TestResult, TestServer, create_request, release, temp_dir};

const SERVICE: &str = "pressroom.v1.PressReleaseService";

#[tokio::test]
async fn health_reports_serving() -> TestResult {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    Ok(())
}

#[tokio::test]
async fn reflection_describes_the_api_in_both_versions() -> TestResult {
    let server = TestServer::start().await;

    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses
            .next()
            .await
            .transpose()?
            .and_then(|r| r.message_response)
    else {
        return Err("no list of services".into());
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == SERVICE), "{names:?}");
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(format!(
                "{SERVICE}.CreatePressRelease"
            )),
        ),
        ..Default::default()
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        responses
            .next()
            .await
            .transpose()?
            .and_then(|r| r.message_response)
    else {
        return Err("no file descriptor".into());
    };
    assert!(!files.file_descriptor_proto.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_restart_keeps_everything_and_the_log_continues() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            server
                .client
                .create_press_release(create_request(release(&format!("Kept {i}"))))
                .await?
                .into_inner(),
        );
    }
    let updated = server
        .client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: created[0].name.clone(),
                etag: created[0].etag.clone(),
                headline: "Kept 0, corrected".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await?
        .into_inner();
    let withdrawn = server
        .client
        .delete_press_release(DeletePressReleaseRequest {
            name: created[1].name.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();

    let mut server = server.restart().await;
    let got = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: updated.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        got, updated,
        "same content, revision and etag after a restart"
    );
    for release in &created[2..] {
        let got = server
            .client
            .get_press_release(GetPressReleaseRequest {
                name: release.name.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(&got, release);
    }
    let gone = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: withdrawn.name.clone(),
        })
        .await;
    assert_eq!(gone.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    server
        .client
        .create_press_release(create_request(release("After the restart")))
        .await?;

    let data_dir = server.data_dir();
    let _dir = server.stop().await;
    let store = SledStore::open(&data_dir.join("store"), 16 << 20)?;
    let head = store.log_head();
    let log = store.read_log(0, head, usize::MAX)?;
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<u64>>(),
        "5 creates, 1 update, 1 withdrawal, 1 create: no gap"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_and_is_bounded_with_streams_open() -> TestResult {
    let mut server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await?
        .into_inner();
    let first = watch.next().await.ok_or("watch ended")??;
    assert_eq!(first.status(), ServingStatus::Serving);

    // The health watch is a stream that never ends on its own; shutdown must
    // still finish, within the 2 s grace the helper configures plus slack.
    let stopping = tokio::spawn(async move { server.stop_in_place().await });
    let update = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await?
        .ok_or("the watch ended without reporting NOT_SERVING")??;
    assert_eq!(update.status(), ServingStatus::NotServing);
    let took = tokio::time::timeout(Duration::from_secs(15), stopping).await??;
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    Ok(())
}

/// `App::build` wires everything, so a part that cannot start (here the
/// search index, whose folder is a file) fails the build, before anything
/// is served.
#[tokio::test]
async fn a_part_that_cannot_start_fails_the_build() -> TestResult {
    let dir = temp_dir();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    std::fs::write(data_dir.join("search"), b"not a folder")?;
    let data = data_dir.display().to_string();
    let config = pressroom::ServeConfig::from_args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--cache-mb",
        "16",
    ])?;
    let built = pressroom::App::build(config).await;
    assert!(
        matches!(built, Err(pressroom::AppError::Search(_))),
        "{:?}",
        built.err()
    );
    Ok(())
}

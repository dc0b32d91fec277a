//! API keys and roles: every RPC against every kind of caller, embargoed
//! releases hidden from readers, keys reloaded without a restart, and the
//! start-up rule for serving without keys.

use std::time::{Duration, Instant};

use pressroom::{
    App, ServeConfig,
    client::Client,
    proto::v1::{
        BackupPressReleasesRequest, CreatePressReleaseRequest, DeletePressReleaseRequest,
        GetPressReleaseRequest, GetPressReleaseStatsRequest, ImportPressReleasesRequest,
        ListPressReleasesRequest, PressRelease, SearchPressReleasesRequest, StartPosition,
        UpdatePressReleaseRequest, WatchPressReleasesRequest, press_release::State,
        watch_press_releases_request::Start,
    },
};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, client_with, create_request, from_now, read_until_caught_up, release,
    temp_dir, write_keys,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Reader,
    Publisher,
    Admin,
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    Create,
    Get,
    List,
    Update,
    Delete,
    Watch,
    Import,
    Search,
    Stats,
    Backup,
}

impl Rpc {
    const ALL: [Rpc; 10] = [
        Rpc::Create,
        Rpc::Get,
        Rpc::List,
        Rpc::Update,
        Rpc::Delete,
        Rpc::Watch,
        Rpc::Import,
        Rpc::Search,
        Rpc::Stats,
        Rpc::Backup,
    ];

    fn needs(self) -> Need {
        match self {
            Rpc::Create | Rpc::Update | Rpc::Delete | Rpc::Import => Need::Publisher,
            Rpc::Backup => Need::Admin,
            _ => Need::Reader,
        }
    }

    /// What an allowed call answers here.
    fn allowed(self) -> Code {
        match self {
            Rpc::Get | Rpc::Update | Rpc::Delete => Code::NotFound,
            _ => Code::Ok,
        }
    }

    async fn call(self, client: &mut Client) -> Code {
        let missing = format!("pressReleases/{}", uuid::Uuid::now_v7());
        let result: Result<(), tonic::Status> = match self {
            Rpc::Create => client
                .create_press_release(create_request(release("auth table")))
                .await
                .map(drop),
            Rpc::Get => client
                .get_press_release(GetPressReleaseRequest { name: missing })
                .await
                .map(drop),
            Rpc::List => client
                .list_press_releases(ListPressReleasesRequest::default())
                .await
                .map(drop),
            Rpc::Update => client
                .update_press_release(UpdatePressReleaseRequest {
                    press_release: Some(PressRelease {
                        name: missing,
                        etag: "x".into(),
                        headline: "x".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                })
                .await
                .map(drop),
            Rpc::Delete => client
                .delete_press_release(DeletePressReleaseRequest {
                    name: missing,
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::Watch => client
                .watch_press_releases(WatchPressReleasesRequest::default())
                .await
                .map(drop),
            Rpc::Import => client
                .import_press_releases(tokio_stream::iter(Vec::<ImportPressReleasesRequest>::new()))
                .await
                .map(drop),
            Rpc::Search => client
                .search_press_releases(SearchPressReleasesRequest {
                    query: "anything".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::Stats => client
                .get_press_release_stats(GetPressReleaseStatsRequest::default())
                .await
                .map(drop),
            Rpc::Backup => match client
                .backup_press_releases(BackupPressReleasesRequest {})
                .await
            {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    let mut outcome = Ok(());
                    while let Some(chunk) = stream.next().await {
                        if let Err(status) = chunk {
                            outcome = Err(status);
                        }
                    }
                    outcome
                }
                Err(status) => Err(status),
            },
        };
        result.err().map_or(Code::Ok, |status| status.code())
    }
}

#[tokio::test]
async fn every_rpc_against_every_kind_of_caller() -> TestResult {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(dir, &["--keys-file", &path]).await;
    let callers: [(&str, Option<&str>, Option<Need>); 5] = [
        ("no key", None, None),
        ("bad key", Some("not-a-key"), None),
        ("reader", Some(&keys.reader), Some(Need::Reader)),
        ("publisher", Some(&keys.publisher), Some(Need::Publisher)),
        ("admin", Some(&keys.admin), Some(Need::Admin)),
    ];
    let mut table = Vec::new();
    for rpc in Rpc::ALL {
        for (who, token, role) in callers {
            let mut client = client_with(server.addr, token).await;
            let got = rpc.call(&mut client).await;
            let expected = match role {
                None => Code::Unauthenticated,
                Some(role) if role < rpc.needs() => Code::PermissionDenied,
                Some(_) => rpc.allowed(),
            };
            table.push((format!("{rpc:?} as {who}"), got, expected));
        }
    }
    let wrong: Vec<_> = table
        .iter()
        .filter(|(_, got, expected)| got != expected)
        .collect();
    assert!(
        wrong.is_empty(),
        "unexpected codes (call, got, expected): {wrong:#?}"
    );

    // Health and reflection stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            server.channel().await,
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
        ..Default::default()
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    assert!(answers.next().await.transpose()?.is_some());
    Ok(())
}

#[tokio::test]
async fn embargoed_releases_are_invisible_to_readers() -> TestResult {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(dir, &["--keys-file", &path]).await;
    let mut publisher = client_with(server.addr, Some(&keys.publisher)).await;
    let mut reader = client_with(server.addr, Some(&keys.reader)).await;
    let embargoed = publisher
        .create_press_release(CreatePressReleaseRequest {
            press_release: Some(PressRelease {
                embargo_time: Some(from_now(3_600)),
                ..release("Merger terms under embargo")
            }),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(embargoed.state(), State::Embargoed);

    let get = GetPressReleaseRequest {
        name: embargoed.name.clone(),
    };
    let hidden = reader
        .get_press_release(get.clone())
        .await
        .err()
        .ok_or("a reader got it")?;
    assert_eq!(hidden.code(), Code::NotFound);
    let seen = publisher.get_press_release(get).await?.into_inner();
    assert_eq!(seen.headline, "Merger terms under embargo");

    let asking = ListPressReleasesRequest {
        include_embargoed: true,
        ..Default::default()
    };
    let refused = reader
        .list_press_releases(asking.clone())
        .await
        .err()
        .ok_or("a reader listed embargoed")?;
    assert_eq!(refused.code(), Code::PermissionDenied);
    let listed = reader
        .list_press_releases(ListPressReleasesRequest::default())
        .await?
        .into_inner();
    assert!(listed.press_releases.is_empty());
    let for_publisher = publisher.list_press_releases(asking).await?.into_inner();
    assert_eq!(
        for_publisher.press_releases,
        std::slice::from_ref(&embargoed)
    );

    let mut stream = reader
        .watch_press_releases(WatchPressReleasesRequest {
            filter: None,
            start: Some(Start::Position(StartPosition::Beginning as i32)),
            ..Default::default()
        })
        .await?
        .into_inner();
    let watched = read_until_caught_up(&mut stream).await?;
    assert!(
        watched.events.is_empty(),
        "a watcher saw an embargoed release"
    );

    let search = reader
        .search_press_releases(SearchPressReleasesRequest {
            query: "merger".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(search.total_size, 0);
    Ok(())
}

#[tokio::test]
async fn the_keys_file_is_reloaded_without_a_restart() -> TestResult {
    let dir = temp_dir();
    let keys = write_keys(dir.path());
    let path = keys.path.display().to_string();
    let server = TestServer::start_in(dir, &["--keys-file", &path]).await;
    let new_key = format!("rotated-{}", uuid::Uuid::new_v4());
    let mut rotated = client_with(server.addr, Some(&new_key)).await;
    let list = ListPressReleasesRequest::default();
    let before = rotated
        .list_press_releases(list.clone())
        .await
        .err()
        .ok_or("unknown key accepted")?;
    assert_eq!(before.code(), Code::Unauthenticated);

    // A broken file is refused and the keys in force stay.
    std::fs::write(&keys.path, "this is not a keys file")?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut reader = client_with(server.addr, Some(&keys.reader)).await;
    reader.list_press_releases(list.clone()).await?;

    let line =
        pressroom::api_keys::keys_file_line("rotated", pressroom::domain::Role::Reader, &new_key);
    std::fs::write(&keys.path, line)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rotated.list_press_releases(list.clone()).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::Unauthenticated && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(format!("the new key never worked: {status:?}").into()),
        }
    }
    let old = reader
        .list_press_releases(list)
        .await
        .err()
        .ok_or("a removed key still works")?;
    assert_eq!(old.code(), Code::Unauthenticated);
    Ok(())
}

#[tokio::test]
async fn without_keys_only_loopback_unless_insecure() -> TestResult {
    let dir = temp_dir();
    let data = dir.path().join("data").display().to_string();
    let public = ServeConfig::from_args(["--listen", "0.0.0.0:0", "--data-dir", &data])?;
    let refused = App::build(public)
        .await
        .err()
        .ok_or("started on 0.0.0.0 without keys")?;
    assert!(refused.to_string().contains("--insecure"), "{refused}");
    let insecure =
        ServeConfig::from_args(["--listen", "0.0.0.0:0", "--data-dir", &data, "--insecure"])?;
    let app = App::build(insecure).await?;
    drop(app);
    Ok(())
}

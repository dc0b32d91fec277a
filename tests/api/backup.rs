//! Backup under concurrent writes, restore, compare; cursors issued before
//! the backup keep working on the restored server; damaged values are
//! reported, never returned.

use std::collections::HashMap;

use pressroom::{
    proto::v1::{
        BackupPressReleasesRequest, GetPressReleaseRequest, StartPosition,
        WatchPressReleasesRequest, watch_press_releases_request::Start,
    },
    store::SledStore,
};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{
    TestResult, TestServer, create_request, damage_record, list_all, read_events,
    read_until_caught_up, release, seq, sled_temp_dir, watch,
};

#[tokio::test]
async fn backup_under_writes_restore_and_compare() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    for i in 0..50 {
        server
            .client
            .create_press_release(create_request(release(&format!("before {i}"))))
            .await?;
    }
    let mut stream = watch(
        &mut server.client,
        WatchPressReleasesRequest {
            filter: None,
            start: Some(Start::Position(StartPosition::Beginning as i32)),
            ..Default::default()
        },
    )
    .await?;
    let pre_backup_cursor = read_until_caught_up(&mut stream).await?.last_cursor();
    drop(stream);

    let stop = tokio_util::sync::CancellationToken::new();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = server.new_client().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                client
                    .create_press_release(create_request(release(&format!("during {w}-{i}"))))
                    .await?;
                i += 1;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut backup = Vec::new();
    let mut chunks = server
        .client
        .backup_press_releases(BackupPressReleasesRequest {})
        .await?
        .into_inner();
    while let Some(chunk) = chunks.next().await {
        backup.extend(chunk?.chunk);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.cancel();
    for writer in writers {
        writer.await??;
    }
    let original = list_all(&mut server.client)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect::<HashMap<_, _>>();

    let restored_dir = sled_temp_dir();
    let info = SledStore::restore(&mut backup.as_slice(), &restored_dir.path().join("data"))?;
    assert!(
        info.position > 50,
        "writes went on before the backup: {info:?}"
    );
    let mut restored = TestServer::start_in(restored_dir, &[]).await;
    let copy = list_all(&mut restored.client)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect::<HashMap<_, _>>();
    assert_eq!(
        copy.len() as u64,
        info.position,
        "one release per change up to the backup's position"
    );
    for (name, release) in &copy {
        assert_eq!(
            original.get(name),
            Some(release),
            "{name} differs from the original"
        );
    }
    let before: Vec<_> = original
        .values()
        .filter(|r| r.headline.starts_with("before"))
        .collect();
    assert_eq!(before.len(), 50);
    assert!(
        before.iter().all(|r| copy.contains_key(&r.name)),
        "a release acknowledged before the backup is missing"
    );

    // A cursor from before the backup resumes on the restored server.
    let mut resumed = watch(
        &mut restored.client,
        WatchPressReleasesRequest {
            filter: None,
            start: Some(Start::AfterCursor(pre_backup_cursor)),
            ..Default::default()
        },
    )
    .await?;
    let replay = read_until_caught_up(&mut resumed).await?;
    assert_eq!(replay.events.len() as u64, info.position - 50);
    assert_eq!(replay.events.first().map(|e| seq(&e.cursor)), Some(51));
    restored
        .client
        .create_press_release(create_request(release("after restore")))
        .await?;
    let next = read_events(&mut resumed, 1).await?;
    assert_eq!(
        seq(&next.events[0].cursor),
        info.position + 1,
        "the change log continues"
    );
    Ok(())
}

#[tokio::test]
async fn a_flipped_byte_on_disk_is_reported_not_returned() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    let damaged = server
        .client
        .create_press_release(create_request(release("Will be damaged")))
        .await?
        .into_inner();
    let intact = server
        .client
        .create_press_release(create_request(release("Stays intact")))
        .await?
        .into_inner();
    let data_dir = server.data_dir();
    let dir = server.stop().await;
    damage_record(&data_dir, &damaged.name)?;
    let mut server = TestServer::start_in(dir, &[]).await;
    let status = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: damaged.name.clone(),
        })
        .await
        .err()
        .ok_or("a damaged record was returned")?;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        !status.message().contains("Will be"),
        "no content leaks into the error"
    );
    let fine = server
        .client
        .get_press_release(GetPressReleaseRequest {
            name: intact.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(fine, intact);
    Ok(())
}

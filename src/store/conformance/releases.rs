//! Checks of releases themselves: creating, reading, request ids, source
//! uniqueness and later versions, compare-and-swap, reopening, backups.

use super::*;

/// A backup is the store at the log head: two with no commit between are
/// the same.
pub(super) fn backups(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    commit(&store, ids.iter().map(|id| create(*id, "b", &[])).collect());
    let read = |mut file: crate::store::BackupFile| {
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut read).unwrap_or_else(|e| panic!("read: {e}"));
        (file.info(), read)
    };
    let (info, first) = read(ok(store.backup_file()));
    assert!(!first.is_empty());
    assert_eq!(
        read(ok(store.backup_file())),
        (info, first),
        "the same backup"
    );
    assert_eq!((info.store_id, info.position), (store.store_id(), 3));
}

pub(super) fn empty_store(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(store.log_head(), 0);
    assert_eq!(ok(store.get(&Uuid::now_v7())), None);
    assert!(ok(store.list(&ListQuery::default(), None, 10)).is_empty());
    assert!(ok(store.read_log(0, 10, 10)).is_empty());
}

pub(super) fn create_get_and_log(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let first = commit(
        &store,
        vec![create(ids[0], "a", &[]), create(ids[1], "b", &[])],
    );
    let second = commit(
        &store,
        ids[2..].iter().map(|id| create(*id, "c", &[])).collect(),
    );
    let seqs: Vec<u64> = first.iter().chain(&second).map(committed_seq).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "sequence numbers are gapless across commits"
    );
    assert_eq!(store.log_head(), 5);
    assert_eq!(ok(store.get(&ids[0])).map(|r| r.headline), Some("a".into()));

    let log = ok(store.read_log(0, 5, 100));
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(log[1].release_id, ids[1].as_bytes().to_vec());
    assert_eq!(log[1].kind, ChangeKind::Created as i32);
    assert_eq!(log[1].revision, 1);
    assert_eq!(log[1].commit_time, Some(at(1_800_000_000)));
    assert_eq!(ok(store.read_log(2, 4, 100)).len(), 2, "bounded by up_to");
    assert_eq!(ok(store.read_log(0, 5, 3)).len(), 3, "bounded by limit");
}

pub(super) fn request_ids(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let with_request = |id: Uuid, headline: &str| {
        let Change::Create(mut create) = create(id, headline, &[]) else {
            unreachable!()
        };
        create.request_id = Some("req-1".into());
        Change::Create(create)
    };
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // The same request id twice in one commit: the second sees the first.
    let results = commit(
        &store,
        vec![with_request(a, "first"), with_request(b, "second")],
    );
    assert_eq!(committed_seq(&results[0]), 1);
    match &results[1] {
        Ok(Applied::Existing(existing)) => assert_eq!(existing.headline, "first"),
        other => panic!("expected the first release, got {other:?}"),
    }
    // And in a later commit.
    let results = commit(&store, vec![with_request(c, "third")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "first"));
    assert_eq!(store.log_head(), 1, "a repeated request writes nothing");
    assert_eq!(ok(store.get(&b)), None);
}

pub(super) fn source_uniqueness(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let sourced = |id: Uuid, fingerprint: &str| {
        let Change::Create(mut create) = create(id, "sourced", &[]) else {
            unreachable!()
        };
        create.source = Some(("wire".into(), "item-1".into()));
        create.fingerprint = fingerprint.as_bytes().to_vec();
        Change::Create(create)
    };
    let first = Uuid::now_v7();
    commit(&store, vec![sourced(first, "same")]);
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "same")]);
    assert!(
        matches!(&results[0], Ok(Applied::Existing(r)) if r.name.ends_with(&first.to_string()))
    );
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "other")]);
    assert!(
        matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.name.ends_with(&first.to_string()))
    );
    assert_eq!(store.log_head(), 1);
}

pub(super) fn a_later_version_of_a_source(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let sourced = |id: Uuid, item_id: &str, fingerprint: &str| {
        let Change::Create(mut create) = create(id, "v1", &[]) else {
            unreachable!()
        };
        create.source = Some(("wire".into(), item_id.into()));
        create.fingerprint = fingerprint.as_bytes().to_vec();
        Change::Create(create)
    };
    let id = Uuid::now_v7();
    commit(&store, vec![sourced(id, "item-1", "v1")]);
    let later = |expected: i64, headline: &str, item_id: &str| {
        let mut next = release(id, headline, &[], 1_700_000_000);
        next.revision = expected + 1;
        next.source = Some(crate::proto::v1::Source {
            provider: "wire".into(),
            item_id: item_id.into(),
            version: 2,
            ..Default::default()
        });
        Change::Replace(Replacement {
            id,
            expected_revision: expected,
            release: next,
            kind: ChangeKind::Updated,
            source_fingerprint: Some(b"v2".to_vec()),
        })
    };
    // Compare-and-swap as for any replacement: the stale one changes nothing.
    let results = commit(
        &store,
        vec![later(1, "v2", "item-1"), later(1, "v2-lost", "item-1")],
    );
    assert_eq!(committed_seq(&results[0]), 2);
    assert!(matches!(&results[1], Err(Rejected::Stale(r)) if r.headline == "v2"));
    // The claim now holds the new fingerprint: v2 again is the existing
    // release, v1 again (its old fingerprint) is other content.
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v2")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "v2"));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v1")]);
    assert!(matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.headline == "v2"));
    assert_eq!(store.log_head(), 2);
    // A replacement cannot take the claim of another release's source.
    let other = Uuid::now_v7();
    commit(&store, vec![sourced(other, "item-2", "x")]);
    let results = commit(&store, vec![later(2, "stolen", "item-2")]);
    assert!(
        matches!(&results[0], Err(Rejected::SourceTaken(r)) if r.name.ends_with(&other.to_string()))
    );
    assert_eq!(store.log_head(), 3, "a refused replacement writes nothing");
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("v2".into()));
    // It survives reopening like every other write.
    drop(store);
    let store = ok(open(dir));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-1", "v2")]);
    assert!(matches!(&results[0], Ok(Applied::Existing(r)) if r.headline == "v2"));
    let results = commit(&store, vec![sourced(Uuid::now_v7(), "item-2", "x")]);
    assert!(
        matches!(&results[0], Ok(Applied::Existing(r)) if r.name.ends_with(&other.to_string()))
    );
}

pub(super) fn compare_and_swap(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let id = Uuid::now_v7();
    commit(&store, vec![create(id, "v1", &[])]);
    let replace = |expected: i64, headline: &str| {
        let mut next = release(id, headline, &[], 1_700_000_000);
        next.revision = expected + 1;
        Change::Replace(Replacement {
            id,
            expected_revision: expected,
            release: next,
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })
    };
    // Two replaces expecting the same revision in one commit: only the first wins.
    let results = commit(&store, vec![replace(1, "v2"), replace(1, "v2-lost")]);
    assert_eq!(committed_seq(&results[0]), 2);
    assert!(matches!(&results[1], Err(Rejected::Stale(r)) if r.headline == "v2"));
    let results = commit(&store, vec![replace(1, "stale")]);
    assert!(matches!(&results[0], Err(Rejected::Stale(r)) if r.revision == 2));
    let results = commit(
        &store,
        vec![Change::Replace(Replacement {
            id: Uuid::now_v7(),
            expected_revision: 1,
            release: PressRelease::default(),
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })],
    );
    assert_eq!(results[0], Err(Rejected::NotFound));
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("v2".into()));
    let log = ok(store.read_log(0, 10, 10));
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].kind, ChangeKind::Updated as i32);
    assert_eq!(log[1].revision, 2);
}

pub(super) fn reopening(open: Open<'_>, dir: &Path) {
    let id = Uuid::now_v7();
    let store_id = {
        let store = ok(open(dir));
        commit(
            &store,
            vec![
                create(id, "kept", &["tech"]),
                create(Uuid::now_v7(), "x", &[]),
            ],
        );
        store.store_id()
    };
    let store = ok(open(dir));
    assert_eq!(store.store_id(), store_id);
    assert_eq!(store.log_head(), 2);
    assert_eq!(ok(store.get(&id)).map(|r| r.headline), Some("kept".into()));
    let results = commit(&store, vec![create(Uuid::now_v7(), "after", &[])]);
    assert_eq!(
        committed_seq(&results[0]),
        3,
        "the log continues without a gap"
    );
    let tech = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        ..Default::default()
    };
    assert_eq!(names(&ok(store.list(&tech, None, 10))), ["kept"]);
}

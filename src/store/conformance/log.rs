//! Checks of the change log: its links to the records, visibility, and
//! positions by commit time.

use super::*;

pub(super) fn log_links(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let (id, other) = (Uuid::now_v7(), Uuid::now_v7());
    let Change::Create(mut embargoed) = create(id, "x", &["tech"]) else {
        unreachable!()
    };
    embargoed.release.state = State::Embargoed as i32;
    commit(
        &store,
        vec![Change::Create(embargoed), create(other, "y", &[])],
    );
    let mut published = release(id, "x", &["tech"], 1_700_000_000);
    published.revision = 1;
    commit(
        &store,
        vec![replace(id, 1, published.clone(), ChangeKind::Published)],
    );
    let mut moved = published.clone();
    moved.revision = 2;
    moved.channels = vec!["sport".into()];
    commit(&store, vec![replace(id, 2, moved, ChangeKind::Updated)]);

    let log = ok(store.read_log(0, 10, 10));
    assert_eq!(log.len(), 4);
    let tech = facet_hash(Facet::Channel, "tech");
    let sport = facet_hash(Facet::Channel, "sport");
    // Created embargoed: not visible, no link.
    assert_eq!(
        (log[0].prev_seq, log[0].prev_visible, log[0].visible),
        (0, false, false)
    );
    assert!(log[0].facets.is_empty());
    // Published: linked to the creation, visible now with its facets.
    assert_eq!(
        (log[2].prev_seq, log[2].prev_visible, log[2].visible),
        (1, false, true)
    );
    assert!(log[2].facets.contains(&tech));
    assert!(log[2].prev_facets.is_empty());
    // Updated: the previous version's facets ride along.
    assert_eq!(
        (log[3].prev_seq, log[3].prev_visible, log[3].visible),
        (3, true, true)
    );
    assert!(log[3].prev_facets.contains(&tech) && !log[3].prev_facets.contains(&sport));
    assert!(log[3].facets.contains(&sport) && !log[3].facets.contains(&tech));
    assert_eq!(log[3].change_kind(), ChangeKind::Updated);
}

pub(super) fn commit_time_positions(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(ok(store.log_position_at(&at(0))), 0);
    for (time, count) in [(100, 2), (200, 3), (300, 1)] {
        let changes = (0..count)
            .map(|_| create(Uuid::now_v7(), "t", &[]))
            .collect();
        ok(store.commit(changes, at(time)));
    }
    // Entries 1-2 at 100, 3-5 at 200, 6 at 300.
    assert_eq!(ok(store.log_position_at(&at(50))), 0);
    assert_eq!(ok(store.log_position_at(&at(100))), 0);
    assert_eq!(ok(store.log_position_at(&at(150))), 2);
    assert_eq!(ok(store.log_position_at(&at(300))), 5);
    assert_eq!(ok(store.log_position_at(&at(301))), 6);
    // A clock that goes back does not make commit times go back.
    ok(store.commit(vec![create(Uuid::now_v7(), "late", &[])], at(250)));
    let last = ok(store.read_log(6, 7, 1));
    assert_eq!(last[0].commit_time, Some(at(300)));
}

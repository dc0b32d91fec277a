//! Checks of what commits keep besides the records: list order, filters
//! and bounds, the facet and embargo indexes, published counts.

use super::*;

pub(super) fn list_order_filters_and_bounds(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let make = |headline: &str, channels: &[&str], country: &str, publish: i64| {
        let id = Uuid::now_v7();
        let Change::Create(mut create) = create_at(id, headline, channels, publish) else {
            unreachable!()
        };
        create.release.dateline = Some(crate::proto::v1::Dateline {
            country_code: country.into(),
            ..Default::default()
        });
        Change::Create(create)
    };
    commit(
        &store,
        vec![
            make("oldest", &["tech"], "US", 100),
            make("middle", &["business", "tech"], "GB", 200),
            make("newest", &["business"], "US", 300),
            make("tie-a", &["sport"], "US", 250),
            make("tie-b", &["sport"], "US", 250),
        ],
    );
    let all = ok(store.list(&ListQuery::default(), None, 10));
    assert_eq!(
        names(&all)[..2],
        ["newest".to_string(), "tie-a".to_string()]
    );
    assert_eq!(
        names(&all)[3..],
        ["middle".to_string(), "oldest".to_string()]
    );

    let query = |facets: Vec<(Facet, Vec<&str>)>| ListQuery {
        facets: facets
            .into_iter()
            .map(|(f, v)| (f, v.into_iter().map(String::from).collect()))
            .collect(),
        ..Default::default()
    };
    let tech_or_business = query(vec![(Facet::Channel, vec!["tech", "business"])]);
    assert_eq!(
        names(&ok(store.list(&tech_or_business, None, 10))),
        ["newest", "middle", "oldest"]
    );
    let and = query(vec![
        (Facet::Channel, vec!["tech", "business"]),
        (Facet::Country, vec!["us"]),
    ]);
    assert_eq!(names(&ok(store.list(&and, None, 10))), ["newest", "oldest"]);
    let none = query(vec![(Facet::Channel, vec!["nothing"])]);
    assert!(ok(store.list(&none, None, 10)).is_empty());

    // Paging by position, with and without facets.
    let page = ok(store.list(&tech_or_business, None, 2));
    assert_eq!(names(&page), ["newest", "middle"]);
    let rest = ok(store.list(&tech_or_business, Some(&page[1].0), 2));
    assert_eq!(names(&rest), ["oldest"]);
    let page = ok(store.list(&ListQuery::default(), Some(&all[1].0), 2));
    assert_eq!(names(&page), names(&all[2..4]));

    // Time bounds: at or after 200, before 300.
    let bounded = ListQuery {
        published_at_or_after: Some(at(200)),
        published_before: Some(at(300)),
        ..Default::default()
    };
    let listed = names(&ok(store.list(&bounded, None, 10)));
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.last().map(String::as_str), Some("middle"));
    let bounded_tech = ListQuery {
        published_at_or_after: Some(at(150)),
        ..query(vec![(Facet::Channel, vec!["tech"])])
    };
    assert_eq!(names(&ok(store.list(&bounded_tech, None, 10))), ["middle"]);
}

pub(super) fn indexes_follow_changes(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let id = Uuid::now_v7();
    let embargoed_id = Uuid::now_v7();
    let Change::Create(mut embargoed) = create(embargoed_id, "embargoed", &["tech"]) else {
        unreachable!()
    };
    embargoed.release.state = State::Embargoed as i32;
    embargoed.release.embargo_time = Some(at(4_000_000_000));
    commit(
        &store,
        vec![create(id, "moving", &["tech"]), Change::Create(embargoed)],
    );
    let tech = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        ..Default::default()
    };
    assert_eq!(
        names(&ok(store.list(&tech, None, 10))),
        ["moving"],
        "embargoed is not listed"
    );

    let mut moved = release(id, "moving", &["sport"], 1_700_000_500);
    moved.revision = 2;
    commit(
        &store,
        vec![Change::Replace(Replacement {
            id,
            expected_revision: 1,
            release: moved,
            kind: ChangeKind::Updated,
            source_fingerprint: None,
        })],
    );
    assert!(
        ok(store.list(&tech, None, 10)).is_empty(),
        "old facet entry removed"
    );
    let sport = ListQuery {
        facets: vec![(Facet::Channel, vec!["sport".into()])],
        ..Default::default()
    };
    let listed = ok(store.list(&sport, None, 10));
    assert_eq!(names(&listed), ["moving"]);
    assert_eq!(listed[0].1.publish_time, Some(at(1_700_000_500)));

    let tombstone = PressRelease {
        name: format!("pressReleases/{id}"),
        state: State::Withdrawn as i32,
        revision: 3,
        ..Default::default()
    };
    commit(
        &store,
        vec![Change::Replace(Replacement {
            id,
            expected_revision: 2,
            release: tombstone.clone(),
            kind: ChangeKind::Withdrawn,
            source_fingerprint: None,
        })],
    );
    assert!(ok(store.list(&ListQuery::default(), None, 10)).is_empty());
    assert!(ok(store.list(&sport, None, 10)).is_empty());
    assert_eq!(
        ok(store.get(&id)),
        Some(tombstone),
        "only the tombstone is left"
    );
}

pub(super) fn embargo_index(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    assert_eq!(ok(store.next_embargo()), None);
    let embargo = |id: Uuid, seconds: i64| {
        let Change::Create(mut create) = create(id, "e", &[]) else {
            unreachable!()
        };
        create.release.state = State::Embargoed as i32;
        create.release.embargo_time = Some(at(seconds));
        Change::Create(create)
    };
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    commit(
        &store,
        vec![embargo(a, 300), embargo(b, 100), embargo(c, 200)],
    );
    assert_eq!(ok(store.next_embargo()), Some((at(100), b)));
    assert_eq!(ok(store.embargoes_due(&at(250), 10)), vec![b, c]);
    assert_eq!(ok(store.embargoes_due(&at(250), 1)), vec![b]);
    assert!(ok(store.embargoes_due(&at(99), 10)).is_empty());

    // Moving an embargo moves its index entry; publishing or withdrawing
    // removes it.
    let mut later = release(b, "e", &[], 1_700_000_000);
    later.state = State::Embargoed as i32;
    later.embargo_time = Some(at(400));
    let mut published = release(c, "e", &[], 1_700_000_000);
    published.revision = 1;
    let tombstone = PressRelease {
        state: State::Withdrawn as i32,
        ..Default::default()
    };
    commit(
        &store,
        vec![
            replace(b, 1, later, ChangeKind::Updated),
            replace(c, 1, published, ChangeKind::Published),
            replace(a, 1, tombstone, ChangeKind::Withdrawn),
        ],
    );
    assert_eq!(ok(store.next_embargo()), Some((at(400), b)));
    assert_eq!(ok(store.embargoes_due(&at(1_000), 10)), vec![b]);
}

pub(super) fn published_counts(open: Open<'_>, dir: &Path) {
    let store = ok(open(dir));
    let hour = 3_600;
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    commit(
        &store,
        vec![
            create_at(a, "a", &["tech"], 10 * hour + 5),
            create_at(b, "b", &["tech"], 10 * hour + 7),
            create_at(c, "c", &["sport"], 12 * hour),
            create_at(d, "d", &[], 30 * hour),
        ],
    );
    assert_eq!(ok(store.published_total()), 4);
    assert_eq!(
        ok(store.published_per_hour(0, 100)),
        vec![(10, 2), (12, 1), (30, 1)]
    );
    assert_eq!(ok(store.published_per_hour(11, 30)), vec![(12, 1)]);

    // Moving a release to another hour, and withdrawing one, move the counts.
    let mut moved = release(b, "b", &["tech"], 12 * hour + 1);
    moved.revision = 1;
    let tombstone = PressRelease {
        state: State::Withdrawn as i32,
        ..Default::default()
    };
    commit(
        &store,
        vec![
            replace(b, 1, moved, ChangeKind::Updated),
            replace(d, 1, tombstone, ChangeKind::Withdrawn),
        ],
    );
    assert_eq!(ok(store.published_total()), 3);
    assert_eq!(ok(store.published_per_hour(0, 100)), vec![(10, 1), (12, 2)]);

    let mut times = Vec::new();
    ok(store.published_times(&ListQuery::default(), &mut |t| times.push(t.seconds)));
    assert_eq!(times, vec![12 * hour + 1, 12 * hour, 10 * hour + 5]);
    let tech_after_11 = ListQuery {
        facets: vec![(Facet::Channel, vec!["tech".into()])],
        published_at_or_after: Some(at(11 * hour)),
        ..Default::default()
    };
    let mut times = Vec::new();
    ok(store.published_times(&tech_after_11, &mut |t| times.push(t.seconds)));
    assert_eq!(times, vec![12 * hour + 1]);
}

//! Checks of subscription definitions and state (issue 18).

use super::*;

pub(super) fn subscription(id: &str) -> crate::store::SubscriptionRecord {
    crate::store::SubscriptionRecord {
        subscription: Some(crate::proto::v1::Subscription {
            name: format!("subscriptions/{id}"),
            query: "solar".into(),
            max_deliveries: 5,
            creator: "reader-1".into(),
            ..Default::default()
        }),
        start: 7,
    }
}

/// Definitions: create once, read, list in id order after a given id,
/// delete with all state, and all of it kept across reopening.
pub(super) fn subscriptions(open: Open<'_>, dir: &Path) {
    {
        let store = ok(open(dir));
        assert_eq!(ok(store.subscription("a")), None);
        assert!(ok(store.create_subscription(&subscription("b"), 7)));
        assert!(ok(store.create_subscription(&subscription("a"), 0)));
        assert!(ok(store.create_subscription(&subscription("a-1"), 3)));
        let mut other = subscription("a");
        other.start = 99;
        assert!(
            !ok(store.create_subscription(&other, 99)),
            "an existing id is not overwritten"
        );
        assert_eq!(ok(store.subscription("a")), Some(subscription("a")));
        let ids = |records: Vec<crate::store::SubscriptionRecord>| -> Vec<String> {
            records
                .into_iter()
                .filter_map(|r| r.subscription.map(|s| s.name))
                .collect()
        };
        assert_eq!(
            ids(ok(store.subscriptions("", 10))),
            ["subscriptions/a", "subscriptions/a-1", "subscriptions/b"]
        );
        assert_eq!(ids(ok(store.subscriptions("a", 1))), ["subscriptions/a-1"]);
        assert_eq!(ids(ok(store.subscriptions("a-1", 10))), ["subscriptions/b"]);
        assert_eq!(
            ok(store.subscription_state("a")).map(|s| s.position),
            Some(0)
        );
        assert_eq!(
            ok(store.subscription_state("b")).map(|s| s.position),
            Some(7)
        );
        assert_eq!(ok(store.subscription_state("zz")), None);
        assert!(ok(store.delete_subscription("b")));
        assert!(!ok(store.delete_subscription("b")));
    }
    let store = ok(open(dir));
    assert_eq!(ok(store.subscription("b")), None);
    assert_eq!(ok(store.subscription_state("b")), None);
    assert_eq!(ok(store.subscriptions("", 10)).len(), 2);
}

/// State: positions only move forward (Seek aside), event states after the
/// position are kept and forgotten when it passes them, dead letters are
/// upserted and removed, changes for unknown subscriptions are skipped,
/// and everything survives reopening.
pub(super) fn subscription_state(open: Open<'_>, dir: &Path) {
    use crate::store::{EventState, StoredDeadLetter, SubscriptionChange as C};
    let event = |seq, acked, deliveries| C::Event {
        id: "s".into(),
        seq,
        state: EventState { acked, deliveries },
    };
    let letter = |seq, replaying| StoredDeadLetter {
        seq,
        release_id: vec![7; 16],
        event_type: 1,
        deliveries: 5,
        time: Some(at(1_700_000_000)),
        replaying,
    };
    {
        let store = ok(open(dir));
        assert!(ok(store.create_subscription(&subscription("s"), 10)));
        ok(store.commit_subscriptions(vec![
            event(12, true, 1),
            event(13, false, 3),
            event(20, false, 2),
            // Not before the position: ignored.
            event(9, true, 1),
            C::DeadLetter {
                id: "s".into(),
                letter: letter(11, false),
            },
            C::Event {
                id: "gone".into(),
                seq: 12,
                state: EventState::default(),
            },
        ]));
        let state = ok(store.subscription_state("s")).unwrap_or_default();
        assert_eq!(state.position, 10);
        assert_eq!(
            state.events.keys().copied().collect::<Vec<_>>(),
            [12, 13, 20]
        );
        assert_eq!(
            state.events[&13],
            EventState {
                acked: false,
                deliveries: 3
            }
        );
        assert_eq!(state.dead_letters, [letter(11, false)]);
        assert_eq!(
            ok(store.subscription("gone")),
            None,
            "not brought into being"
        );
        ok(store.commit_subscriptions(vec![
            C::Advance {
                id: "s".into(),
                position: 13,
            },
            // Written and passed in the same batch: forgotten.
            event(14, true, 1),
            C::Advance {
                id: "s".into(),
                position: 15,
            },
            // Never back.
            C::Advance {
                id: "s".into(),
                position: 2,
            },
            C::DeadLetter {
                id: "s".into(),
                letter: letter(11, true),
            },
        ]));
        let state = ok(store.subscription_state("s")).unwrap_or_default();
        assert_eq!(state.position, 15);
        assert_eq!(state.events.keys().copied().collect::<Vec<_>>(), [20]);
        assert_eq!(state.dead_letters, [letter(11, true)]);
    }
    let store = ok(open(dir));
    let state = ok(store.subscription_state("s")).unwrap_or_default();
    assert_eq!(
        (state.position, state.events.len(), state.dead_letters.len()),
        (15, 1, 1),
        "kept across reopening"
    );
    ok(store.commit_subscriptions(vec![
        event(30, true, 1),
        C::Seek {
            id: "s".into(),
            position: 3,
        },
        C::RemoveDeadLetter {
            id: "s".into(),
            seq: 11,
        },
    ]));
    let state = ok(store.subscription_state("s")).unwrap_or_default();
    assert_eq!(state.position, 3, "seek goes back");
    assert!(state.events.is_empty(), "seek forgets every event state");
    assert!(state.dead_letters.is_empty());
    // A store whose writes and subscription commits interleave keeps both.
    let id = Uuid::now_v7();
    commit(&store, vec![create(id, "Interleaved", &["Tech"])]);
    ok(store.commit_subscriptions(vec![C::Advance {
        id: "s".into(),
        position: 4,
    }]));
    drop(store);
    let store = ok(open(dir));
    assert!(ok(store.get(&id)).is_some());
    assert_eq!(
        ok(store.subscription_state("s")).map(|s| s.position),
        Some(4)
    );
}

//! Subscription state on a real PostgreSQL, beyond the conformance suite:
//! concurrent commits share transactions, and replicas lease a
//! subscription one at a time, a replica that lost its lease being fenced
//! off.

use std::{sync::Arc, time::Duration};

use super::{ClusterOptions, LocalCluster, PostgresOptions, PostgresStore};
use crate::{
    proto::v1::Subscription,
    store::{EventState, StoreError, SubscriptionChange, SubscriptionLease, SubscriptionRecord},
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn start_cluster() -> LocalCluster {
    LocalCluster::start(&ClusterOptions::default())
        .unwrap_or_else(|error| panic!("a local PostgreSQL is needed for this test: {error}"))
}

fn record(id: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        subscription: Some(Subscription {
            name: format!("subscriptions/{id}"),
            ..Default::default()
        }),
        start: 0,
    }
}

async fn wait_held(lease: &mut SubscriptionLease, within: Duration) -> bool {
    tokio::time::timeout(within, lease.until(true))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscription_commits_share_transactions() -> TestResult {
    let cluster = start_cluster();
    cluster.create_database("grouped").await?;
    let store =
        Arc::new(PostgresStore::open(&cluster.url("grouped"), PostgresOptions::default()).await?);
    let (subscriptions, rounds) = (32u64, 20u64);
    for s in 0..subscriptions {
        assert!(
            store
                .create_subscription(&record(&format!("s{s}")), 0)
                .await?
        );
    }
    let before = store.subscription_commits().transactions();
    let tasks: Vec<_> = (0..subscriptions)
        .map(|s| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = format!("s{s}");
                for round in 1..=rounds {
                    store
                        .commit_subscriptions(vec![
                            SubscriptionChange::Advance {
                                id: id.clone(),
                                position: round * 10,
                            },
                            SubscriptionChange::Event {
                                id: id.clone(),
                                seq: round * 10 + 2,
                                state: EventState {
                                    acked: true,
                                    deliveries: 1,
                                },
                            },
                        ])
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let transactions = store.subscription_commits().transactions() - before;
    let calls = subscriptions * rounds;
    eprintln!("{calls} commits in {transactions} transactions");
    assert!(
        transactions < calls,
        "{calls} concurrent commits took {transactions} transactions: none shared"
    );
    for s in 0..subscriptions {
        let state = store
            .subscription_state(&format!("s{s}"))
            .await?
            .unwrap_or_default();
        assert_eq!(state.position, rounds * 10);
        assert_eq!(
            state.events.keys().copied().collect::<Vec<_>>(),
            [rounds * 10 + 2]
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leases_a_subscription_and_a_lost_lease_is_fenced_off() -> TestResult {
    let cluster = start_cluster();
    cluster.create_database("leases").await?;
    let url = cluster.url("leases");
    let a = PostgresStore::open(&url, PostgresOptions::default()).await?;
    let b = PostgresStore::open(&url, PostgresOptions::default()).await?;
    assert!(a.create_subscription(&record("s"), 0).await?);
    let advance = |position| {
        vec![SubscriptionChange::Advance {
            id: "s".into(),
            position,
        }]
    };

    let mut lease_a = a.lease_subscription("s");
    assert!(
        wait_held(&mut lease_a, Duration::from_secs(5)).await,
        "A takes the free lease"
    );
    let mut lease_b = b.lease_subscription("s");
    assert!(
        !wait_held(&mut lease_b, Duration::from_millis(2_500)).await,
        "B waits while A holds it"
    );
    a.commit_subscriptions(advance(5)).await?;

    // A lets go (its last stream went): B takes over.
    drop(lease_a);
    assert!(
        wait_held(&mut lease_b, Duration::from_secs(5)).await,
        "B takes it when A lets go"
    );
    b.commit_subscriptions(advance(6)).await?;

    // A takes it back after B's session is cut; B, not yet aware, is
    // refused.
    let mut lease_a = a.lease_subscription("s");
    let admin = cluster.connect("leases").await?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND classid = $1::int8::oid AND granted",
            &[&(0x7072_7375_i64)],
        )
        .await?;
    assert!(
        wait_held(&mut lease_a, Duration::from_secs(5)).await,
        "A takes over a lost lease"
    );
    match b.commit_subscriptions(advance(100)).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("a replica that lost the lease committed: {other:?}"),
    }
    a.commit_subscriptions(advance(7)).await?;
    let state = a.subscription_state("s").await?.unwrap_or_default();
    assert_eq!(state.position, 7, "only the holders' commits landed");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), lease_b.until(false))
            .await
            .is_ok(),
        "B learns it lost the lease at its next check"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_database_is_migrated_to_keep_subscriptions() -> TestResult {
    let cluster = start_cluster();
    cluster.create_database("format1").await?;
    let mut client = cluster.connect("format1").await?;
    let id = super::schema::prepare_up_to(&mut client, 1).await?;
    let before: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pressroom'",
            &[],
        )
        .await?
        .get(0);
    let store = PostgresStore::open(&cluster.url("format1"), PostgresOptions::default()).await?;
    assert_eq!(store.store_id(), id, "migrating keeps the store id");
    let format: i32 = client
        .query_one("SELECT format FROM pressroom.meta", &[])
        .await?
        .get(0);
    assert_eq!(format, super::schema::FORMAT_VERSION);
    let after: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pressroom'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(after, before + 4, "four subscription tables");
    assert!(store.create_subscription(&record("s"), 3).await?);
    assert_eq!(
        store.subscription_state("s").await?.map(|s| s.position),
        Some(3)
    );
    Ok(())
}

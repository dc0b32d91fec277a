//! The PostgreSQL engine's schema, created and migrated by Pressroom itself
//! when a store opens. Everything lives in the `pressroom` schema of the
//! database the URL names. `pressroom.meta` holds the format version and
//! the store id; a database of a newer format than this build knows is
//! refused. Replicas starting together take a transaction-scoped advisory
//! lock, so exactly one of them creates or migrates.
//!
//! | table            | one row per                 | what for                                   |
//! |------------------|-----------------------------|--------------------------------------------|
//! | `meta`           | store                       | format version, store id                   |
//! | `log_head`       | store                       | last sequence number, last commit time, published total: every commit locks this row first |
//! | `releases`       | press release               | the record (protobuf), revision, last log entry; list position and facets while published, embargo key while embargoed |
//! | `request_ids`    | request id                  | idempotency of creates                     |
//! | `sources`        | `(provider, item_id)`       | source uniqueness, with a content fingerprint |
//! | `change_log`     | change                      | the `LogEntry` (protobuf), by sequence     |
//! | `commits`        | commit                      | its first sequence number, time and batch id: `start_time` positions, and resolving a commit whose outcome was lost |
//! | `published_hours`| publish hour with releases  | published counts for stats                 |
//! | `subscriptions`  | subscription (format 2)     | its definition (protobuf)                  |
//! | `subscription_positions` | subscription        | its position, and the lease epoch that fences commits of a replica that lost the lease |
//! | `subscription_events` | event with state after a position | acknowledged, delivery count  |
//! | `subscription_dead_letters` | dead letter      | the dead letter (protobuf)                 |
//!
//! Times and list positions are the same order-preserving bytes the sled
//! engine uses ([`crate::store::ListPosition`]), so `bytea` order is list
//! order and page tokens mean the same on both engines.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::store::StoreError;

use super::engine::db_error;

/// The format this build reads and writes.
pub(super) const FORMAT_VERSION: i32 = 2;

/// Taken (per transaction) while creating or migrating the schema.
const MIGRATION_LOCK: i64 = 0x7072_6573_736d_6967; // "pressmig"

/// The statements that bring a database from format `n - 1` to `n`, for
/// `n = 1, 2, ...` in order.
const MIGRATIONS: &[&str] = &[
    // 1: the first format.
    r#"
    CREATE TABLE pressroom.log_head (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        head bigint NOT NULL,
        commit_time bytea NOT NULL,
        published_total bigint NOT NULL
    );
    INSERT INTO pressroom.log_head (head, commit_time, published_total)
        VALUES (0, '\x800000000000000000000000'::bytea, 0);
    CREATE TABLE pressroom.releases (
        id uuid PRIMARY KEY,
        record bytea NOT NULL,
        revision bigint NOT NULL,
        last_seq bigint NOT NULL,
        list_position bytea,
        facets text[],
        embargo_key bytea
    );
    CREATE INDEX releases_by_position ON pressroom.releases (list_position)
        WHERE list_position IS NOT NULL;
    CREATE INDEX releases_by_facet ON pressroom.releases USING gin (facets);
    CREATE INDEX releases_by_embargo ON pressroom.releases (embargo_key)
        WHERE embargo_key IS NOT NULL;
    CREATE TABLE pressroom.request_ids (
        request_id text PRIMARY KEY,
        release_id uuid NOT NULL
    );
    CREATE TABLE pressroom.sources (
        provider text NOT NULL,
        item_id text NOT NULL,
        release_id uuid NOT NULL,
        fingerprint bytea NOT NULL,
        PRIMARY KEY (provider, item_id)
    );
    CREATE TABLE pressroom.change_log (
        seq bigint PRIMARY KEY,
        entry bytea NOT NULL
    );
    CREATE TABLE pressroom.commits (
        first_seq bigint PRIMARY KEY,
        last_seq bigint NOT NULL,
        commit_time bytea NOT NULL,
        batch_id uuid NOT NULL UNIQUE
    );
    CREATE INDEX commits_by_time ON pressroom.commits (commit_time, first_seq);
    CREATE TABLE pressroom.published_hours (
        hour bigint PRIMARY KEY,
        count bigint NOT NULL
    );
    "#,
    // 2: subscriptions (issue 18). Ids sort bytewise, as sled's keys do.
    r#"
    CREATE TABLE pressroom.subscriptions (
        id text COLLATE "C" PRIMARY KEY,
        record bytea NOT NULL
    );
    CREATE TABLE pressroom.subscription_positions (
        id text COLLATE "C" PRIMARY KEY
            REFERENCES pressroom.subscriptions (id) ON DELETE CASCADE,
        position bigint NOT NULL,
        lease bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE pressroom.subscription_events (
        subscription text COLLATE "C" NOT NULL
            REFERENCES pressroom.subscriptions (id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        acked boolean NOT NULL,
        deliveries integer NOT NULL,
        PRIMARY KEY (subscription, seq)
    );
    CREATE TABLE pressroom.subscription_dead_letters (
        subscription text COLLATE "C" NOT NULL
            REFERENCES pressroom.subscriptions (id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        letter bytea NOT NULL,
        PRIMARY KEY (subscription, seq)
    );
    "#,
];

/// Creates or migrates the schema, and returns the store id. Refuses a
/// database of a newer format than this build's.
pub(super) async fn prepare(client: &mut Client) -> Result<Uuid, StoreError> {
    prepare_up_to(client, FORMAT_VERSION).await
}

/// [`prepare`] for a build that knows formats up to `supported` (tests use
/// it to make a "newer" database).
pub(super) async fn prepare_up_to(client: &mut Client, supported: i32) -> Result<Uuid, StoreError> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS pressroom;
         CREATE TABLE IF NOT EXISTS pressroom.meta (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             format integer NOT NULL,
             store_id uuid NOT NULL
         );",
    )
    .await
    .map_err(db_error)?;
    let row = tx
        .query_opt("SELECT format, store_id FROM pressroom.meta", &[])
        .await
        .map_err(db_error)?;
    let (found, store_id) = match row {
        Some(row) => (row.get::<_, i32>(0), row.get::<_, Uuid>(1)),
        None => {
            let store_id = Uuid::new_v4();
            tx.execute(
                "INSERT INTO pressroom.meta (format, store_id) VALUES (0, $1)",
                &[&store_id],
            )
            .await
            .map_err(db_error)?;
            (0, store_id)
        }
    };
    if found > supported {
        return Err(StoreError::UnsupportedFormat {
            found: found as u32,
            supported: supported as u32,
        });
    }
    for (index, statements) in MIGRATIONS.iter().enumerate().take(supported as usize) {
        let version = index as i32 + 1;
        if version <= found {
            continue;
        }
        tracing::info!(version, "migrating the PostgreSQL schema");
        tx.batch_execute(statements).await.map_err(db_error)?;
        tx.execute("UPDATE pressroom.meta SET format = $1", &[&version])
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(store_id)
}

/// Sets the stored format (tests: a database "from a newer build").
#[cfg(test)]
pub(super) async fn set_format(client: &Client, format: i32) -> Result<(), StoreError> {
    client
        .execute("UPDATE pressroom.meta SET format = $1", &[&format])
        .await
        .map(drop)
        .map_err(db_error)
}

//! Reading the PostgreSQL engine: releases (one by id, a list page, their
//! publish times and counts), the change log, and pending embargoes.

use futures_util::StreamExt;
use prost::Message;
use uuid::Uuid;

use crate::{
    proto::{Timestamp, v1::PressRelease},
    store::{
        ListPosition, ListQuery, LogEntry, StoreError,
        position::{TIME_LEN, time_bytes, time_from_bytes},
    },
};

use super::{
    engine::{PostgresStore, corrupt, db_error, decode_record, to_i64},
    list_filter::ListFilter,
};

impl PostgresStore {
    /// The current record of a release, withdrawn ones included.
    pub async fn get(&self, id: &Uuid) -> Result<Option<PressRelease>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT record FROM pressroom.releases WHERE id = $1")
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[id])
            .await
            .map_err(db_error)?;
        row.map(|row| decode_record(id, row.get(0))).transpose()
    }

    /// Published releases matching `query`, in list order, after `after`,
    /// at most `limit`.
    pub async fn list(
        &self,
        query: &ListQuery,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<(ListPosition, PressRelease)>, StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, after);
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = filter
            .query(&client, Some(&limit), true)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let position_bytes: &[u8] = row.get(0);
                let position = ListPosition::from_slice(position_bytes)
                    .ok_or_else(|| corrupt("releases.list_position"))?;
                let release = decode_record(&position.release_id(), row.get(1))?;
                Ok((position, release))
            })
            .collect()
    }

    /// How PostgreSQL runs [`PostgresStore::list`] for `query` (`EXPLAIN
    /// ANALYZE` of the same statement with the same values, run for real):
    /// the plan's lines, for operators and the benchmark to see which index
    /// a filter uses.
    pub async fn explain_list(
        &self,
        query: &ListQuery,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, None);
        let limit = limit.min(i64::MAX as usize) as i64;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", filter.sql(true, true));
        let rows = client
            .query_typed(&sql, &filter.params(Some(&limit)))
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Calls `visit` with the publish time of every published release that
    /// matches `query`, newest first.
    pub async fn published_times(
        &self,
        query: &ListQuery,
        visit: &mut (dyn FnMut(Timestamp) + Send),
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let filter = ListFilter::new(query, None);
        let rows = filter.stream(&client).await.map_err(db_error)?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(db_error)?;
            let position = ListPosition::from_slice(row.get(0))
                .ok_or_else(|| corrupt("releases.list_position"))?;
            visit(position.publish_time());
        }
        Ok(())
    }

    /// How many releases are published.
    pub async fn published_total(&self) -> Result<u64, StoreError> {
        let total: i64 = self
            .query_one("SELECT published_total FROM pressroom.log_head", &[])
            .await?
            .get(0);
        Ok(total.max(0) as u64)
    }

    /// Published releases per publish hour, `from_hour <= h < to_hour`.
    pub async fn published_per_hour(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT hour, count FROM pressroom.published_hours
                 WHERE hour >= $1 AND hour < $2 AND count > 0 ORDER BY hour",
            )
            .await
            .map_err(db_error)?;
        let rows = client
            .query(&statement, &[&from_hour, &to_hour])
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// Change-log entries with `after < seq <= up_to`, in order, at most
    /// `limit`.
    pub async fn read_log(
        &self,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if after >= up_to || limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT seq, entry FROM pressroom.change_log
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(db_error)?;
        let (after, up_to) = (to_i64(after), to_i64(up_to));
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&statement, &[&after, &up_to, &limit])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                LogEntry::decode(row.get::<_, &[u8]>(1))
                    .map_err(|_| corrupt(&format!("change_log/{seq}")))
            })
            .collect()
    }

    /// The log position after which the entries committed at or after
    /// `time` follow.
    pub async fn log_position_at(&self, time: &Timestamp) -> Result<u64, StoreError> {
        let row = self
            .query_one(
                "SELECT coalesce(
                    (SELECT first_seq - 1 FROM pressroom.commits
                     WHERE commit_time >= $1 ORDER BY commit_time, first_seq LIMIT 1),
                    (SELECT head FROM pressroom.log_head))",
                &[&time_bytes(time).as_slice()],
            )
            .await?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// The earliest pending embargo.
    pub async fn next_embargo(&self) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT embargo_key FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL ORDER BY embargo_key LIMIT 1",
            )
            .await
            .map_err(db_error)?;
        let row = client.query_opt(&statement, &[]).await.map_err(db_error)?;
        row.map(|row| parse_embargo_key(row.get(0))).transpose()
    }

    /// Embargoed releases due at `now`, earliest first, at most `limit`.
    pub async fn embargoes_due(
        &self,
        now: &Timestamp,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT embargo_key FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL AND embargo_key <= $1
                 ORDER BY embargo_key LIMIT $2",
            )
            .await
            .map_err(db_error)?;
        let mut bound = time_bytes(now).to_vec();
        bound.extend_from_slice(&[0xff; 16]);
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&statement, &[&bound, &limit])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| parse_embargo_key(row.get(0)).map(|(_, id)| id))
            .collect()
    }

    /// Every embargoed release, earliest embargo first.
    pub async fn embargoed(&self) -> Result<Vec<PressRelease>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, record FROM pressroom.releases
                 WHERE embargo_key IS NOT NULL ORDER BY embargo_key",
                &[],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| decode_record(&row.get::<_, Uuid>(0), row.get(1)))
            .collect()
    }

    /// How many embargoed releases wait.
    pub async fn embargoes_pending(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .query_one(
                "SELECT count(*) FROM pressroom.releases WHERE embargo_key IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        Ok(count.max(0) as u64)
    }
}

fn parse_embargo_key(key: &[u8]) -> Result<(Timestamp, Uuid), StoreError> {
    let (time, id) = key
        .split_first_chunk::<TIME_LEN>()
        .ok_or_else(|| corrupt("releases.embargo_key"))?;
    let id = Uuid::from_slice(id).map_err(|_| corrupt("releases.embargo_key"))?;
    Ok((time_from_bytes(time), id))
}

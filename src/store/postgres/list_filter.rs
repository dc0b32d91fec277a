//! How a list query becomes one SQL statement over the releases table, with
//! its parameters, run whole or streamed.

use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::store::{ListPosition, ListQuery};

use super::plan::facet_term;

/// The `WHERE` of a list: positions after the page's, within the time
/// bounds, with at least one value of every facet group. Parameters: `$1`
/// exclusive lower bound, `$2` inclusive upper bound (or null), `$3` every
/// wanted `tag:value`, `$4` its group, `$5` how many groups.
/// A list query as a statement: published releases in list order within
/// the bounds, and for each facet of the filter, `facets && $n` (one of its
/// values is among the release's) — the operator the GIN index on `facets`
/// answers, so a narrow filter reads its matches from the index instead of
/// walking the list order and checking every release.
pub(super) struct ListFilter {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    /// Per facet of the filter, the terms of which one must match.
    groups: Vec<Vec<String>>,
}

impl ListFilter {
    pub(super) fn new(query: &ListQuery, after: Option<&ListPosition>) -> Self {
        // Newest first: "before b" starts after every position at b.
        let mut lower = after.map(|p| p.0.to_vec()).unwrap_or_default();
        if let Some(before) = &query.published_before {
            let at_before = ListPosition::new(before, &Uuid::max()).0.to_vec();
            lower = lower.max(at_before);
        }
        let upper = query
            .published_at_or_after
            .as_ref()
            .map(|after| ListPosition::new(after, &Uuid::max()).0.to_vec());
        let groups = query
            .facets
            .iter()
            .map(|(facet, values)| {
                values
                    .iter()
                    .map(|value| facet_term(facet.tag(), value))
                    .collect()
            })
            .collect();
        Self {
            lower,
            upper,
            groups,
        }
    }

    /// The statement: the position and, with `record`, the record.
    pub(super) fn sql(&self, limited: bool, record: bool) -> String {
        use std::fmt::Write as _;
        let mut sql = String::from(if record {
            "SELECT list_position, record"
        } else {
            "SELECT list_position"
        });
        sql.push_str(
            " FROM pressroom.releases
             WHERE list_position IS NOT NULL AND list_position > $1
               AND ($2::bytea IS NULL OR list_position <= $2)",
        );
        for n in 0..self.groups.len() {
            let _ = write!(sql, " AND facets && ${}::text[]", n + 3);
        }
        sql.push_str(" ORDER BY list_position");
        if limited {
            let _ = write!(sql, " LIMIT ${}", self.groups.len() + 3);
        }
        sql
    }

    pub(super) fn params<'a>(
        &'a self,
        limit: Option<&'a i64>,
    ) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> =
            vec![(&self.lower, Type::BYTEA), (&self.upper, Type::BYTEA)];
        params.extend(
            self.groups
                .iter()
                .map(|group| (group as &(dyn ToSql + Sync), Type::TEXT_ARRAY)),
        );
        if let Some(limit) = limit {
            params.push((limit, Type::INT8));
        }
        params
    }

    /// Runs the query. Without facets it is one prepared statement; with
    /// them it is planned for the values given (an unnamed statement, still
    /// one round trip), since whether the GIN index or the list order is
    /// the faster way depends on how common the values are — a generic
    /// plan of a prepared statement would guess.
    pub(super) async fn query(
        &self,
        client: &deadpool_postgres::Object,
        limit: Option<&i64>,
        record: bool,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let sql = self.sql(limit.is_some(), record);
        let params = self.params(limit);
        if self.groups.is_empty() {
            let statement = client.prepare_cached(&sql).await?;
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            client.query(&statement, &values).await
        } else {
            client.query_typed(&sql, &params).await
        }
    }

    /// The positions of every match, streamed.
    pub(super) async fn stream(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<tokio_postgres::RowStream, tokio_postgres::Error> {
        let sql = self.sql(false, false);
        let params = self.params(None);
        if self.groups.is_empty() {
            let statement = client.prepare_cached(&sql).await?;
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            client.query_raw(&statement, values).await
        } else {
            client.query_typed_raw(&sql, params).await
        }
    }
}

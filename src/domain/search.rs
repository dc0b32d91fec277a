//! `SearchPressReleases`: checks the request, runs the query on the search
//! index, and answers with the current records (re-checked: the index may
//! lag the store by a moment) and their highlights.

use std::sync::Arc;

use super::{DomainError, PressReleases, filter, page_token, validate::Violations};
use crate::{
    proto::v1::{
        Highlight, SearchPressReleasesRequest, SearchPressReleasesResponse, SearchResult,
        press_release::State,
    },
    search::{Order, query, standing::StandingQuery},
};

/// Default page size of search.
pub const DEFAULT_SEARCH_PAGE_SIZE: usize = 20;
/// Largest page size of search.
pub const MAX_SEARCH_PAGE_SIZE: usize = 100;
/// Longest query.
const MAX_QUERY_CHARS: usize = 1_000;
/// Deepest result that can be paged to.
const MAX_OFFSET: u64 = 10_000;

/// Checks and parses a query of the search language.
fn parse_query(text: &str) -> Result<query::Query, DomainError> {
    let mut v = Violations::default();
    v.line("query", text, MAX_QUERY_CHARS);
    v.into_result()?;
    query::parse(text).map_err(|e| DomainError::invalid("query", e.to_string()))
}

/// Checks, parses and analyses the text query of a watch stream: the
/// search language with search's limits and errors.
pub fn standing_query(text: &str) -> Result<(query::Query, StandingQuery), DomainError> {
    let parsed = parse_query(text)?;
    let standing =
        StandingQuery::new(&parsed).map_err(|e| DomainError::invalid("query", e.to_string()))?;
    Ok((parsed, standing))
}

impl PressReleases {
    /// Searches published press releases.
    pub async fn search(
        &self,
        request: SearchPressReleasesRequest,
    ) -> Result<SearchPressReleasesResponse, DomainError> {
        let mut v = Violations::default();
        v.line("query", &request.query, MAX_QUERY_CHARS);
        if request.page_size < 0 {
            v.add("page_size", "must not be negative");
        }
        let order = order(&request.order_by);
        if order.is_none() {
            v.add(
                "order_by",
                "must be empty (most relevant first) or `publish_time desc` (newest first)",
            );
        }
        v.into_result()?;
        let order = order.unwrap_or_default();
        let page_size = match request.page_size {
            0 => DEFAULT_SEARCH_PAGE_SIZE,
            size => (size as usize).min(MAX_SEARCH_PAGE_SIZE),
        };
        let parsed = parse_query(&request.query)?;
        let list_query = filter::to_query(request.filter.as_ref(), "filter")?;
        let fingerprint = filter::fingerprint(
            &list_query,
            &format!("{}|{}", request.query, request.order_by),
        );
        let offset = match request.page_token.as_str() {
            "" => 0,
            token => page_token::decode_offset(token, fingerprint).map_err(|e| e.to_domain())?,
        };
        if offset > MAX_OFFSET {
            return Err(DomainError::invalid(
                "page_token",
                format!("search pages reach at most {MAX_OFFSET} results deep; narrow the query"),
            ));
        }
        let index = self.search.clone();
        let store = Arc::clone(&self.store);
        let query = list_query.clone();
        let hits = tokio::task::spawn_blocking(move || {
            index.search(&parsed, &query, order, offset as usize, page_size)
        })
        .await
        .map_err(DomainError::from_join)??;
        let mut found = Vec::with_capacity(hits.hits.len());
        for (score, id) in &hits.hits {
            let Some(release) = store.get(id).await? else {
                continue;
            };
            if release.state() != State::Published || !list_query.matches(&release) {
                continue;
            }
            found.push((*score, release));
        }
        tokio::task::spawn_blocking(move || {
            let mut results = Vec::with_capacity(found.len());
            for (score, release) in found {
                let highlights = hits
                    .highlighter
                    .highlights(&release)
                    .into_iter()
                    .map(|(field, snippet)| Highlight {
                        field: field.into(),
                        snippet,
                    })
                    .collect();
                results.push(SearchResult {
                    press_release: Some(release),
                    score,
                    highlights,
                });
            }
            let next = offset + page_size as u64;
            let next_page_token = if (next as usize) < hits.total && next <= MAX_OFFSET {
                page_token::encode_offset(fingerprint, next)
            } else {
                String::new()
            };
            Ok(SearchPressReleasesResponse {
                results,
                next_page_token,
                total_size: i32::try_from(hits.total).unwrap_or(i32::MAX),
            })
        })
        .await
        .map_err(DomainError::from_join)?
    }
}

/// Checks the text of a search query as [`PressReleases::search`] does
/// (length, characters, syntax) without running it, with the same error.
pub fn check_query(text: &str) -> Result<(), DomainError> {
    parse_query(text).map(drop)
}

/// The order an `order_by` names; `None` if it names none we know.
fn order(order_by: &str) -> Option<Order> {
    let words: Vec<&str> = order_by.split_whitespace().collect();
    match words.as_slice() {
        [] => Some(Order::Relevance),
        ["publish_time", "desc"] => Some(Order::Newest),
        _ => None,
    }
}

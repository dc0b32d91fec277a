//! The text queries of the open watch streams, grouped: streams whose
//! queries mean the same share one [`QueryGroup`], and every change the
//! tail takes in is matched once against all groups together (one analysis
//! of the release, see [`QuerySet`]), not once per stream. Streams read the
//! outcome from the tail; a stream whose group is newer than a change's
//! matching, or that reads history older than the tail, matches the
//! release itself.
//!
//! The set of groups is compiled again only when a group comes or goes,
//! and then at most once per chunk of changes the tail reads.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    proto::v1::{Highlight, PressRelease},
    search::{
        Highlighter,
        standing::{QuerySet, StandingQuery},
    },
};

/// The query of one or more open streams.
pub struct QueryGroup {
    /// Ids grow with every new group, so a change matched when the newest
    /// group was `n` was matched against every group with an id up to `n`.
    id: u64,
    query: Arc<StandingQuery>,
    highlighter: Highlighter,
    queries: Weak<Shared>,
}

impl QueryGroup {
    /// Whether a release matches the group's query.
    pub(super) fn matches(&self, release: &PressRelease) -> bool {
        self.query.matches(release)
    }

    /// Whether the outcome of a change's matching speaks for this group.
    pub(super) fn outcome(&self, matched: &Matched, revision: i64) -> Option<bool> {
        (matched.revision == revision && matched.newest_group >= self.id)
            .then(|| matched.groups.binary_search(&self.id).is_ok())
    }

    /// The highlights of the query's words in a release.
    pub(super) fn highlights(&self, release: &PressRelease) -> Vec<Highlight> {
        self.highlighter
            .highlights(release)
            .into_iter()
            .map(|(field, snippet)| Highlight {
                field: field.into(),
                snippet,
            })
            .collect()
    }

    /// The group's id.
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for QueryGroup {
    fn drop(&mut self) {
        if let Some(queries) = self.queries.upgrade() {
            queries.forget(self.id, &self.query);
        }
    }
}

/// Which groups one version of a release matched, when the tail took it in.
#[derive(Debug)]
pub struct Matched {
    /// The revision matched.
    revision: i64,
    /// Every group with an id up to this one was matched.
    newest_group: u64,
    /// The ids of those that match, sorted.
    groups: Vec<u64>,
}

/// The open streams' queries. Cheap to clone.
#[derive(Clone, Default)]
pub struct OpenQueries {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Changes matched against the groups, and the time it took.
    changes: AtomicU64,
    nanos: AtomicU64,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<Arc<StandingQuery>, (u64, Weak<QueryGroup>)>,
    last_id: u64,
    /// The groups compiled together; `None` after a group came or went.
    compiled: Option<Arc<Compiled>>,
}

struct Compiled {
    set: QuerySet,
    newest_group: u64,
}

/// How the open queries stand and what matching has cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Distinct queries of open streams.
    pub groups: usize,
    /// Changes matched against all of them.
    pub changes_matched: u64,
    /// Time spent matching them.
    pub matching: Duration,
    /// Bytes held by the compiled queries.
    pub compiled_bytes: usize,
}

impl OpenQueries {
    /// The group of `query`, joined or started.
    pub(super) fn open(&self, query: StandingQuery) -> Arc<QueryGroup> {
        let mut inner = self.lock();
        if let Some((_, group)) = inner.groups.get(&query)
            && let Some(group) = group.upgrade()
        {
            return group;
        }
        inner.last_id += 1;
        let query = Arc::new(query);
        let group = Arc::new(QueryGroup {
            id: inner.last_id,
            highlighter: query.highlighter(),
            query: Arc::clone(&query),
            queries: Arc::downgrade(&self.shared),
        });
        inner
            .groups
            .insert(query, (group.id, Arc::downgrade(&group)));
        inner.compiled = None;
        group
    }

    /// Matches a published version of a release against every group, if
    /// there are any.
    pub(super) fn match_release(&self, release: &PressRelease) -> Option<Matched> {
        let compiled = self.compiled()?;
        let started = Instant::now();
        let mut groups = compiled.set.matching(release);
        groups.sort_unstable();
        let spent = started.elapsed();
        self.shared.changes.fetch_add(1, Ordering::Relaxed);
        self.shared
            .nanos
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
        Some(Matched {
            revision: release.revision,
            newest_group: compiled.newest_group,
            groups,
        })
    }

    /// How the open queries stand.
    pub fn stats(&self) -> QueryStats {
        let compiled = self.compiled();
        QueryStats {
            groups: self.lock().groups.len(),
            changes_matched: self.shared.changes.load(Ordering::Relaxed),
            matching: Duration::from_nanos(self.shared.nanos.load(Ordering::Relaxed)),
            compiled_bytes: compiled.map_or(0, |c| c.set.heap_size()),
        }
    }

    /// The groups compiled together (compiled now if a group came or
    /// went); `None` when there are none.
    fn compiled(&self) -> Option<Arc<Compiled>> {
        let mut inner = self.lock();
        if inner.groups.is_empty() {
            return None;
        }
        if let Some(compiled) = &inner.compiled {
            return Some(Arc::clone(compiled));
        }
        let mut live: Vec<(u64, Arc<StandingQuery>)> = inner
            .groups
            .iter()
            .map(|(query, (id, _))| (*id, Arc::clone(query)))
            .collect();
        live.sort_unstable_by_key(|(id, _)| *id);
        let compiled = Arc::new(Compiled {
            set: QuerySet::new(live),
            newest_group: inner.last_id,
        });
        inner.compiled = Some(Arc::clone(&compiled));
        Some(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// Drops a group whose last stream has ended (unless a new group of the
    /// same query has taken its place meanwhile).
    fn forget(&self, id: u64, query: &StandingQuery) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.groups.get(query).is_some_and(|(held, _)| *held == id) {
            inner.groups.remove(query);
            inner.compiled = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::parse;

    fn standing(text: &str) -> StandingQuery {
        let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        StandingQuery::new(&parsed).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn equal_queries_share_a_group_until_their_last_stream_ends() {
        let queries = OpenQueries::default();
        let a = queries.open(standing("acme solar OR wind"));
        let b = queries.open(standing("wind OR solar  acme"));
        let c = queries.open(standing("acme tidal"));
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(queries.stats().groups, 2);
        drop(a);
        assert_eq!(queries.stats().groups, 2);
        drop(b);
        assert_eq!(queries.stats().groups, 1);
        let d = queries.open(standing("acme solar OR wind"));
        assert!(d.id() > c.id(), "a new group gets a new id");
        drop((c, d));
        assert_eq!(queries.stats().groups, 0);
    }

    #[test]
    fn a_change_is_matched_once_for_every_group() {
        let queries = OpenQueries::default();
        let solar = queries.open(standing("solar"));
        let wind = queries.open(standing("wind"));
        let release = PressRelease {
            headline: "Acme opens a solar plant".into(),
            revision: 3,
            ..Default::default()
        };
        let Some(matched) = queries.match_release(&release) else {
            panic!("there are open queries");
        };
        assert_eq!(solar.outcome(&matched, 3), Some(true));
        assert_eq!(wind.outcome(&matched, 3), Some(false));
        assert_eq!(solar.outcome(&matched, 4), None, "another revision");
        let later = queries.open(standing("plant"));
        assert_eq!(
            later.outcome(&matched, 3),
            None,
            "a group newer than the matching"
        );
        assert_eq!(queries.stats().changes_matched, 1);
    }

    #[test]
    fn every_group_reads_its_own_outcome() {
        let queries = OpenQueries::default();
        let words = [
            "acme", "solar", "plant", "wind", "tidal", "opens", "globex", "recall", "merger",
            "battery", "factory", "vaccine",
        ];
        let groups: Vec<_> = words.iter().map(|w| queries.open(standing(w))).collect();
        let release = PressRelease {
            headline: "Acme opens a solar plant and a battery factory".into(),
            ..Default::default()
        };
        let Some(matched) = queries.match_release(&release) else {
            panic!("there are open queries");
        };
        for (word, group) in words.iter().zip(&groups) {
            let expected = release.headline.to_lowercase().contains(word);
            assert_eq!(group.outcome(&matched, 0), Some(expected), "{word}");
        }
    }
}

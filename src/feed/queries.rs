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
//!
//! Once live, a stream with a query is woken only by the changes that can
//! concern it (see [`OpenQueries::announce`]): one its group matched, or one
//! that may remove a release some stream holds. Ten thousand streams then
//! cost a change a few wake-ups, not ten thousand; a stream that sleeps
//! through changes reads past them when next woken (or when its progress
//! is due), so it still reads every entry, in order.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;

use super::tail::TailEntry;
use crate::{
    proto::v1::{Highlight, PressRelease},
    search::{
        Highlighter,
        query::Query,
        standing::{QuerySet, StandingQuery},
    },
};

/// The query of one or more open streams.
pub struct QueryGroup {
    /// Ids grow with every new group, so a change matched when the newest
    /// group was `n` was matched against every group with an id up to `n`.
    id: u64,
    query: Arc<StandingQuery>,
    /// The query as parsed (of the first stream: equal queries mean the
    /// same), for the search index to run.
    parsed: Query,
    highlighter: Highlighter,
    /// The last change that may concern this group's streams.
    relevant: watch::Sender<u64>,
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

    /// The query as parsed.
    pub(super) fn parsed(&self) -> &Query {
        &self.parsed
    }

    /// Follows the last change that may concern this group's streams.
    pub(super) fn relevant(&self) -> watch::Receiver<u64> {
        self.relevant.subscribe()
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

struct Shared {
    inner: Mutex<Inner>,
    /// The last change that may concern any stream with a query.
    everyone: watch::Sender<u64>,
    /// The last change announced: a stream told of none since it last
    /// looked can pass over every change up to here unread.
    announced: AtomicU64,
    /// Changes matched against the groups, and the time it took.
    changes: AtomicU64,
    nanos: AtomicU64,
    /// Releases of history the search index answered for.
    looked_up: AtomicU64,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<Arc<StandingQuery>, (u64, Weak<QueryGroup>)>,
    last_id: u64,
    /// The groups compiled together; `None` after a group came or went.
    compiled: Option<Arc<Compiled>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            everyone: watch::Sender::new(0),
            announced: AtomicU64::default(),
            changes: AtomicU64::default(),
            nanos: AtomicU64::default(),
            looked_up: AtomicU64::default(),
        }
    }
}

struct Compiled {
    set: QuerySet,
    newest_group: u64,
    /// The groups compiled, by id.
    groups: Vec<(u64, Weak<QueryGroup>)>,
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
    /// Releases of history (older than the tail) the search index said
    /// whether they match, for streams replaying it.
    pub looked_up: u64,
}

impl OpenQueries {
    /// The group of `query`, joined or started.
    pub(super) fn open(&self, query: StandingQuery, parsed: Query) -> Arc<QueryGroup> {
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
            parsed,
            relevant: watch::Sender::new(0),
            queries: Arc::downgrade(&self.shared),
        });
        inner
            .groups
            .insert(query, (group.id, Arc::downgrade(&group)));
        inner.compiled = None;
        group
    }

    /// Whether any stream has a query open.
    pub(super) fn any(&self) -> bool {
        !self.lock().groups.is_empty()
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

    /// Follows the last change that may concern any stream with a query.
    pub(super) fn everyone(&self) -> watch::Receiver<u64> {
        self.shared.everyone.subscribe()
    }

    /// Wakes the streams that changes the tail has just taken in (and
    /// published) may concern: those of the groups a change matched, or
    /// all of them for a change that was not matched against every group
    /// or that may remove a release (its previous version was published).
    pub(super) fn announce(&self, entries: &[Arc<TailEntry>]) {
        let Some(compiled) = self.compiled() else {
            return;
        };
        let newest = self.lock().last_id;
        let mut everyone = None;
        let mut groups: Vec<(u64, u64)> = Vec::new();
        for recent in entries {
            let seq = recent.entry.seq;
            match &recent.matched {
                Some(matched) if !recent.entry.prev_visible && matched.newest_group >= newest => {
                    groups.extend(matched.groups.iter().map(|id| (*id, seq)));
                }
                _ => everyone = Some(seq),
            }
        }
        if let Some(seq) = everyone {
            self.shared.everyone.send_replace(seq);
        }
        groups.sort_unstable();
        for (i, (id, seq)) in groups.iter().enumerate() {
            // The last (highest) change of each group.
            if groups.get(i + 1).is_some_and(|(next, _)| next == id) {
                continue;
            }
            let group = compiled
                .groups
                .binary_search_by_key(id, |(id, _)| *id)
                .ok()
                .and_then(|at| compiled.groups[at].1.upgrade());
            if let Some(group) = group {
                group.relevant.send_replace(*seq);
            }
        }
        // After the wake-ups: whoever reads this position and then finds no
        // wake-up of its own was not concerned by anything up to it.
        if let Some(last) = entries.last() {
            self.shared
                .announced
                .fetch_max(last.entry.seq, Ordering::Release);
        }
    }

    /// The last change announced (read it before looking for wake-ups).
    pub(super) fn announced(&self) -> u64 {
        self.shared.announced.load(Ordering::Acquire)
    }

    /// How the open queries stand.
    pub fn stats(&self) -> QueryStats {
        let compiled = self.compiled();
        QueryStats {
            groups: self.lock().groups.len(),
            changes_matched: self.shared.changes.load(Ordering::Relaxed),
            matching: Duration::from_nanos(self.shared.nanos.load(Ordering::Relaxed)),
            compiled_bytes: compiled.map_or(0, |c| c.set.heap_size()),
            looked_up: self.shared.looked_up.load(Ordering::Relaxed),
        }
    }

    /// Counts releases of history the search index answered for.
    pub(super) fn looked_up(&self, releases: usize) {
        self.shared
            .looked_up
            .fetch_add(releases as u64, Ordering::Relaxed);
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
        let mut live: Vec<(u64, Arc<StandingQuery>, Weak<QueryGroup>)> = inner
            .groups
            .iter()
            .map(|(query, (id, group))| (*id, Arc::clone(query), Weak::clone(group)))
            .collect();
        live.sort_unstable_by_key(|(id, _, _)| *id);
        let compiled = Arc::new(Compiled {
            set: QuerySet::new(live.iter().map(|(id, query, _)| (*id, Arc::clone(query)))),
            newest_group: inner.last_id,
            groups: live.into_iter().map(|(id, _, group)| (id, group)).collect(),
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

    fn standing(text: &str) -> (StandingQuery, Query) {
        let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let standing = StandingQuery::new(&parsed).unwrap_or_else(|e| panic!("{text}: {e}"));
        (standing, parsed)
    }

    fn open(queries: &OpenQueries, text: &str) -> Arc<QueryGroup> {
        let (standing, parsed) = standing(text);
        queries.open(standing, parsed)
    }

    #[test]
    fn equal_queries_share_a_group_until_their_last_stream_ends() {
        let queries = OpenQueries::default();
        let a = open(&queries, "acme solar OR wind");
        let b = open(&queries, "wind OR solar  acme");
        let c = open(&queries, "acme tidal");
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(queries.stats().groups, 2);
        drop(a);
        assert_eq!(queries.stats().groups, 2);
        drop(b);
        assert_eq!(queries.stats().groups, 1);
        let d = open(&queries, "acme solar OR wind");
        assert!(d.id() > c.id(), "a new group gets a new id");
        drop((c, d));
        assert_eq!(queries.stats().groups, 0);
    }

    #[test]
    fn a_change_is_matched_once_for_every_group() {
        let queries = OpenQueries::default();
        let solar = open(&queries, "solar");
        let wind = open(&queries, "wind");
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
        let later = open(&queries, "plant");
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
        let groups: Vec<_> = words.iter().map(|w| open(&queries, w)).collect();
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

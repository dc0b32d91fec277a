//! The matching cost of `alerts`, in-process on the corpus's releases: this
//! thread's CPU per change for the token matcher the server uses (all
//! queries at once), for the analysis alone (one query), and for an
//! in-memory tantivy index of each batch (batches of 1 and 20); both ways
//! must agree on every release.

use std::{sync::Arc, time::Duration};

use pressroom::{
    proto::v1::PressRelease,
    search::{
        query::{Query, parse},
        standing::{BatchIndex, QuerySet, StandingQuery},
    },
};

use crate::{
    BenchResult,
    measure::{mib, thousands, thread_cpu_time},
};

/// CPU per change of each way to match.
pub(super) struct Costs {
    queries: usize,
    releases: usize,
    matches_per_change: f64,
    pub(super) matcher: Duration,
    analysis: Duration,
    batch_of_one: Duration,
    batch_of_twenty: Duration,
    compiled_bytes: usize,
}

impl Costs {
    pub(super) fn print(&self) {
        let us = |d: Duration| format!("{:>8.1} µs", d.as_secs_f64() * 1e6);
        println!(
            "   matching, in-process on {} of the corpus's releases with {} queries ({:.1} matching per release; this thread's CPU per change):",
            thousands(self.releases as f64),
            thousands(self.queries as f64),
            self.matches_per_change
        );
        println!(
            "   token matcher, all queries at once   {}   (the server's way)",
            us(self.matcher)
        );
        println!(
            "   of which analysing the release       {}   (the same with one query)",
            us(self.analysis)
        );
        println!(
            "   in-memory index of a batch of 1      {}",
            us(self.batch_of_one)
        );
        println!(
            "   in-memory index of a batch of 20     {}",
            us(self.batch_of_twenty)
        );
        println!(
            "   the compiled queries hold {} ({:.0} bytes per query)",
            mib(self.compiled_bytes as f64),
            self.compiled_bytes as f64 / self.queries.max(1) as f64
        );
    }
}

/// Measures both ways of matching on `releases`, and checks they agree.
pub(super) fn matching_costs(texts: &[String], releases: &[PressRelease]) -> BenchResult<Costs> {
    let parsed: Vec<(u64, Query)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Ok((i as u64, parse(text)?)))
        .collect::<BenchResult<_>>()?;
    let standing: Vec<(u64, Arc<StandingQuery>)> = parsed
        .iter()
        .map(|(id, query)| Ok((*id, Arc::new(StandingQuery::new(query)?))))
        .collect::<BenchResult<_>>()?;
    let set = QuerySet::new(standing.clone());
    let one = QuerySet::new(standing.iter().take(1).cloned());
    let batch = BatchIndex::new(parsed.iter().map(|(id, query)| (*id, query)))?;

    let per_change = |spent: Duration, changes: usize| spent / changes.max(1) as u32;
    let started = thread_cpu_time();
    let matched: Vec<Vec<u64>> = releases.iter().map(|r| set.matching(r)).collect();
    let matcher = per_change(thread_cpu_time().saturating_sub(started), releases.len());

    let started = thread_cpu_time();
    for release in releases {
        std::hint::black_box(one.matching(release));
    }
    let analysis = per_change(thread_cpu_time().saturating_sub(started), releases.len());

    let singles = &releases[..releases.len().min(100)];
    let started = thread_cpu_time();
    for release in singles {
        std::hint::black_box(batch.matching(std::slice::from_ref(release))?);
    }
    let batch_of_one = per_change(thread_cpu_time().saturating_sub(started), singles.len());

    let started = thread_cpu_time();
    let indexed: Vec<Vec<u64>> = releases
        .chunks(20)
        .map(|chunk| batch.matching(chunk))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let batch_of_twenty = per_change(thread_cpu_time().saturating_sub(started), releases.len());

    for (i, (mut ours, theirs)) in matched.iter().cloned().zip(&indexed).enumerate() {
        ours.sort_unstable();
        if &ours != theirs {
            return Err(format!(
                "release {i}: the matcher says {ours:?}, the in-memory index {theirs:?}"
            )
            .into());
        }
    }
    Ok(Costs {
        queries: texts.len(),
        releases: releases.len(),
        matches_per_change: matched.iter().map(Vec::len).sum::<usize>() as f64
            / releases.len().max(1) as f64,
        matcher,
        analysis,
        batch_of_one,
        batch_of_twenty,
        compiled_bytes: set.heap_size(),
    })
}

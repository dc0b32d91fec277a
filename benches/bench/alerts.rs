//! `alerts`: standing queries, that is watch streams with a text query.
//!
//! - History: on the corpus, a replay from the beginning with a query
//!   against the same replay without one (time until caught up; in turn,
//!   the median of each), for a selective query and for one that every
//!   release matches (the most work: every release sent), and that one
//!   again with highlights.
//! - Matching cost, in-process on the corpus's releases with the 1,000
//!   queries of the live part: this thread's CPU per change for the token
//!   matcher the server uses (all queries at once), for the analysis alone
//!   (one query), and for the other way to do it, an in-memory tantivy
//!   index of each batch with every query run on it (batches of 1 and 20);
//!   both ways must agree on every release.
//! - Live: a fresh server with 10,000 streams (1,000 distinct queries, 10
//!   streams each, over 20 connections, with highlights); releases written
//!   at a fixed rate
//!   as in `fanout`. For every delivery, the latency from the write's OK to
//!   receipt; every stream's deliveries are checked against what an
//!   in-memory index of the phase's releases says its query matches, so a
//!   lost or an extra delivery is caught. The server's own time matching
//!   each change against all queries; memory per open stream (this
//!   process's VmRSS: clients included) and the compiled queries' bytes per
//!   distinct query. Then the rate doubles step by step while p99 < 100 ms.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::{
    proto::v1::{PressRelease, WatchPressReleasesRequest},
    search::{
        query::{Query, parse},
        standing::{BatchIndex, QuerySet, StandingQuery},
    },
};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    fanout::{Watcher, follow, halves, is_flat, item_number, lock, sample_rss, write_at_rate},
    generate::{
        Generator, Rng, WIRE,
        vocabulary::{ADJECTIVES, HEADLINE_VERBS, NOUNS},
    },
    measure::{
        Latencies, Summary, Verdict, cpu_time, mib, ms, ratio, rss_bytes, thousands,
        thread_cpu_time,
    },
    replay::{Replayed, replay, typical},
    server::{self, Server},
};

/// Open streams in the live part.
const STREAMS: usize = 10_000;
/// Distinct queries among them.
const QUERIES: usize = 1_000;
/// Connections the streams share (the server allows 1,024 streams each).
const CONNECTIONS: usize = 20;
/// The rate of the first phase, and its target.
const BASE_RATE: f64 = 20.0;
const P99: Duration = Duration::from_millis(100);
/// The rates tried after it, while p99 stays under [`P99`].
const STEP_RATES: &[f64] = &[40.0, 80.0, 160.0, 320.0, 640.0];
/// How long deliveries may trail the last write; later ones count as lost.
const DRAIN: Duration = Duration::from_secs(10);
/// The matching cost allowed per change.
const MATCHING_PER_CHANGE: Duration = Duration::from_millis(1);
/// Without keys every stream is the same anonymous caller.
const FLAGS: &[&str] = &["--max-watchers", "20000", "--max-watchers-per-key", "20000"];

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== alerts: watch with a text query: history on the corpus, matching cost, then {} live streams with {} distinct queries",
        thousands(STREAMS as f64),
        thousands(QUERIES as f64)
    );
    history(plan, corpus, summary).await?;
    let queries = alert_queries(QUERIES)?;
    let sample: Vec<PressRelease> = corpus
        .records
        .iter()
        .take(if plan.quick { 400 } else { 2_000 })
        .cloned()
        .collect();
    let texts = queries.clone();
    let costs = tokio::task::spawn_blocking(move || matching_costs(&texts, &sample)).await??;
    costs.print();
    summary.verdict(
        "alerts",
        "matching CPU per change, 1,000 queries",
        format!("{:.0} µs", costs.matcher.as_secs_f64() * 1e6),
        "≤ 1 ms",
        Verdict::of(costs.matcher <= MATCHING_PER_CHANGE),
    );
    live(plan, &queries, summary).await
}

/// The 1,000 queries of the live part: an issuer, words of the headline,
/// phrases, `OR`, exclusions and field prefixes, each distinct from the
/// others in meaning (not only in spelling).
fn alert_queries(count: usize) -> BenchResult<Vec<String>> {
    let generator = Generator::new(3, "alerts");
    let issuers: Vec<String> = generator
        .issuers()
        .iter()
        .filter_map(|i| i.name.split_whitespace().next().map(str::to_lowercase))
        .collect();
    let verbs: Vec<String> = HEADLINE_VERBS
        .iter()
        .filter_map(|v| v.split_whitespace().next().map(str::to_lowercase))
        .collect();
    let mut rng = Rng::new(1_000);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        if tries > 100 * count {
            return Err("could not make enough distinct queries".into());
        }
        let issuer = &issuers[rng.below(issuers.len())];
        let verb = &verbs[rng.below(verbs.len())];
        let (noun, other) = (rng.pick(NOUNS), rng.pick(NOUNS));
        let adjective = rng.pick(ADJECTIVES);
        let text = match rng.below(7) {
            0 => format!("issuer:{issuer} {noun}"),
            1 => format!("headline:{noun} headline:{verb}"),
            2 => format!("\"{adjective} {noun}\" issuer:{issuer}"),
            3 => format!("headline:{noun} OR headline:{other} {adjective} issuer:{issuer}"),
            4 => format!("headline:\"{adjective} {noun}\" -{other}"),
            5 => format!("{noun} {other} issuer:{issuer} -recall"),
            _ => format!("keywords:{noun} headline:{verb}"),
        };
        let analysed = StandingQuery::new(&parse(&text)?)?;
        if seen.insert(analysed) {
            out.push(text);
        }
    }
    Ok(out)
}

/// Replays the corpus with and without a query, in turn.
async fn history(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    let issuer = corpus
        .records
        .first()
        .and_then(|r| r.issuer.as_ref())
        .and_then(|i| i.name.split_whitespace().next())
        .map(str::to_lowercase)
        .unwrap_or_default();
    let selective = format!("issuer:{issuer} acquisition");
    let every = WIRE.to_lowercase();
    let addr = corpus.server().await?.addr;
    println!(
        "   history: replays of the {} releases from the beginning until caught up, with a query and without, in turn ({} each)",
        thousands(corpus.records.len() as f64),
        plan.replays
    );
    for (label, query, highlight) in [
        ("selective", selective, false),
        ("every-release", every.clone(), false),
        ("every-release, highlights", every, true),
    ] {
        let mut with = Vec::with_capacity(plan.replays);
        let mut without = Vec::with_capacity(plan.replays);
        for _ in 0..plan.replays {
            without.push(replay(addr, "", false).await?);
            with.push(replay(addr, &query, highlight).await?);
        }
        let (Some(with), Some(without)) = (typical(with), typical(without)) else {
            return Err("no replay was made".into());
        };
        let line = |who: &str, r: &Replayed| {
            println!(
                "   {who:<44} {:>7.2} s   {:>8} events   {:.1} s CPU",
                r.elapsed.as_secs_f64(),
                thousands(r.events as f64),
                r.cpu.as_secs_f64()
            );
        };
        line(
            &format!(
                "query {query:?}{}",
                if highlight { " with highlights" } else { "" }
            ),
            &with,
        );
        line("no query", &without);
        let slower = with.elapsed.as_secs_f64() / without.elapsed.as_secs_f64().max(1e-9);
        if highlight {
            summary.verdict(
                "alerts",
                format!("history time, {label}"),
                ratio(slower),
                "report",
                Verdict::Report,
            );
        } else {
            summary.verdict(
                "alerts",
                format!("history time, {label} query vs none"),
                ratio(slower),
                "≤ 2.00×",
                Verdict::of(slower <= 2.0),
            );
        }
    }
    Ok(())
}

/// CPU per change of each way to match.
struct Costs {
    queries: usize,
    releases: usize,
    matches_per_change: f64,
    matcher: Duration,
    analysis: Duration,
    batch_of_one: Duration,
    batch_of_twenty: Duration,
    compiled_bytes: usize,
}

impl Costs {
    fn print(&self) {
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
fn matching_costs(texts: &[String], releases: &[PressRelease]) -> BenchResult<Costs> {
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

/// The figures of one live phase.
struct Phase {
    rate: f64,
    achieved: f64,
    errors: usize,
    deliveries: usize,
    lost: usize,
    extra: usize,
    latencies: Latencies,
    rss: Vec<u64>,
    cpu_per_delivery: Option<Duration>,
    /// The server's time matching, per change matched.
    matching_per_change: Option<Duration>,
}

impl Phase {
    fn passes(&self) -> bool {
        self.latencies.p99() < P99
            && self.lost == 0
            && self.extra == 0
            && self.errors == 0
            && self.achieved >= 0.9 * self.rate
    }

    fn print(&self) {
        println!(
            "   {:>5}/s  wrote {:>5}/s  {:>8} deliveries ({} CPU each)  p50 {:>8}  p99 {:>8}  matching {} per change  lost {}  extra {}  errors {}  rss {}",
            thousands(self.rate),
            thousands(self.achieved),
            thousands(self.deliveries as f64),
            self.cpu_per_delivery
                .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "?".into()),
            ms(self.latencies.p50()),
            ms(self.latencies.p99()),
            self.matching_per_change
                .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "?".into()),
            self.lost,
            self.extra,
            self.errors,
            self.rss.last().map(|b| mib(*b as f64)).unwrap_or_default()
        );
    }
}

/// The streams of the live part.
struct Streams {
    watchers: Vec<Arc<Watcher>>,
    /// The query (its index) of each watcher.
    query_of: Vec<usize>,
    /// The queries, to match each phase's releases with.
    batch: BatchIndex,
    readers: Vec<JoinHandle<()>>,
}

async fn live(plan: &Plan, queries: &[String], summary: &mut Summary) -> BenchResult<()> {
    let dir = server::temp_dir()?;
    let server = Server::start(&server::data_dir(&dir), FLAGS).await?;
    let channels = server::connections(server.addr, CONNECTIONS).await?;
    let writers = server::connections(server.addr, 4).await?;
    let rss_idle = rss_bytes().unwrap_or(0);
    let parsed: Vec<Query> = queries.iter().map(|q| parse(q)).collect::<Result<_, _>>()?;
    let batch = BatchIndex::new(parsed.iter().enumerate().map(|(i, q)| (i as u64, q)))?;

    let epoch = Instant::now();
    let opening = Instant::now();
    let mut streams = Streams {
        watchers: Vec::with_capacity(STREAMS),
        query_of: Vec::with_capacity(STREAMS),
        batch,
        readers: Vec::with_capacity(STREAMS),
    };
    for i in 0..STREAMS {
        let query = i % queries.len();
        let mut client = server::client(channels[i % CONNECTIONS].clone());
        let stream = client
            .watch_press_releases(WatchPressReleasesRequest {
                query: queries[query].clone(),
                highlight: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        let watcher = Arc::new(Watcher::new(epoch));
        streams
            .readers
            .push(tokio::spawn(follow(stream, Arc::clone(&watcher))));
        streams.watchers.push(watcher);
        streams.query_of.push(query);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !streams
        .watchers
        .iter()
        .all(|w| w.ready.load(Ordering::Acquire))
    {
        if Instant::now() > deadline {
            return Err("the streams did not all start following".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_open = rss_bytes().unwrap_or(0);
    let stats = server.watchers.queries();
    println!(
        "   {} streams open in {:.1} s, {} distinct queries on the server; memory {} idle, {} with them open: {:.1} KiB per stream (clients included), compiled queries {:.0} bytes each",
        thousands(STREAMS as f64),
        opening.elapsed().as_secs_f64(),
        thousands(stats.groups as f64),
        mib(rss_idle as f64),
        mib(rss_open as f64),
        rss_open.saturating_sub(rss_idle) as f64 / 1024.0 / STREAMS as f64,
        stats.compiled_bytes as f64 / stats.groups.max(1) as f64
    );
    if stats.groups != queries.len() {
        return Err(format!(
            "the server holds {} query groups for {} distinct queries",
            stats.groups,
            queries.len()
        )
        .into());
    }
    summary.verdict(
        "alerts",
        "memory per open stream (process)",
        format!(
            "{:.1} KiB",
            rss_open.saturating_sub(rss_idle) as f64 / 1024.0 / STREAMS as f64
        ),
        "report",
        Verdict::Report,
    );

    let mut generator = Generator::new(16, "alerts");
    let warm_up = phase(
        &server,
        &streams,
        &writers,
        &mut generator,
        BASE_RATE,
        plan.fanout_warm_up,
    )
    .await?;
    println!(
        "   {:.0} s at {:.0} releases/s to warm up (not counted):",
        plan.fanout_warm_up.as_secs_f64(),
        BASE_RATE
    );
    warm_up.print();
    let base = phase(
        &server,
        &streams,
        &writers,
        &mut generator,
        BASE_RATE,
        plan.fanout_phase,
    )
    .await?;
    println!(
        "   {:.0} s at {:.0} releases/s:",
        plan.fanout_phase.as_secs_f64(),
        BASE_RATE
    );
    base.print();
    let (mid, end) = halves(&base.rss);
    println!(
        "   memory through the phase: start {}, middle {}, end {} ({})",
        base.rss.first().map(|b| mib(*b as f64)).unwrap_or_default(),
        mib(mid as f64),
        mib(end as f64),
        if is_flat(mid, end) { "flat" } else { "growing" }
    );
    summary.verdict(
        "alerts",
        "p99 OK→receipt at 20/s, 10,000 streams",
        ms(base.latencies.p99()),
        "< 100 ms",
        Verdict::of(base.passes()),
    );
    summary.verdict(
        "alerts",
        "server's matching time per change",
        base.matching_per_change
            .map(|d| format!("{:.0} µs", d.as_secs_f64() * 1e6))
            .unwrap_or_else(|| "?".into()),
        "≤ 1 ms",
        Verdict::of(
            base.matching_per_change
                .is_some_and(|d| d <= MATCHING_PER_CHANGE),
        ),
    );
    println!(
        "   stepping the rate up ({:.0} s each) while p99 < 100 ms:",
        plan.fanout_step.as_secs_f64()
    );
    let mut highest = base.passes().then_some(BASE_RATE);
    if highest.is_some() {
        for &rate in STEP_RATES {
            let step = phase(
                &server,
                &streams,
                &writers,
                &mut generator,
                rate,
                plan.fanout_step,
            )
            .await?;
            step.print();
            if !step.passes() {
                break;
            }
            highest = Some(rate);
        }
    }
    summary.verdict(
        "alerts",
        "highest rate with p99 < 100 ms",
        highest
            .map(|r| format!("{}/s", thousands(r)))
            .unwrap_or_else(|| "none".into()),
        "report",
        Verdict::Report,
    );

    for reader in &streams.readers {
        reader.abort();
    }
    for reader in streams.readers.drain(..) {
        let _ = reader.await;
    }
    drop((channels, writers));
    server.stop().await
}

/// Writes at `rate` for `duration`; gathers and checks what each stream
/// received against what its query matches.
async fn phase(
    server: &Server,
    streams: &Streams,
    writers: &[Channel],
    generator: &mut Generator,
    rate: f64,
    duration: Duration,
) -> BenchResult<Phase> {
    let writes = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let releases = generator.releases(writes);
    // Which items each query should deliver, by an index of the releases.
    let matched = streams.batch.matching(&releases)?;
    let mut wanted: HashMap<usize, HashSet<u32>> = HashMap::new();
    for (release, queries) in releases.iter().zip(&matched) {
        if let Some(item) = item_number(release) {
            for query in queries {
                wanted.entry(*query as usize).or_default().insert(item);
            }
        }
    }
    let expected_of = |w: usize| wanted.get(&streams.query_of[w]).map_or(0, HashSet::len);
    let expected: usize = (0..streams.watchers.len()).map(expected_of).sum();
    for watcher in &streams.watchers {
        watcher.reset(8);
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_rss(Arc::clone(&sampling)));
    let matching_before = server.watchers.queries();
    let cpu_before = cpu_time();
    let run = write_at_rate(writers, releases, rate).await?;
    let drained_by = Instant::now() + DRAIN;
    while streams
        .watchers
        .iter()
        .enumerate()
        .any(|(w, watcher)| watcher.count.load(Ordering::Acquire) < expected_of(w))
        && Instant::now() < drained_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    let matching_after = server.watchers.queries();
    sampling.store(false, Ordering::Release);
    let rss = sampler.await?;

    let mut latencies = Latencies::with_capacity(expected);
    let mut extra = 0;
    for (w, watcher) in streams.watchers.iter().enumerate() {
        let wants = wanted.get(&streams.query_of[w]);
        for (item, micros) in lock(&watcher.received).drain(..) {
            let Some(ok) = run.oks.get(&item) else {
                continue;
            };
            if !wants.is_some_and(|items| items.contains(&item)) {
                extra += 1;
                continue;
            }
            let at = watcher.epoch + Duration::from_micros(u64::from(micros));
            latencies.push(at.saturating_duration_since(*ok));
        }
    }
    let deliveries = latencies.len();
    let lost = expected.saturating_sub(deliveries);
    for _ in 0..lost {
        latencies.push(DRAIN);
    }
    let changes = matching_after
        .changes_matched
        .saturating_sub(matching_before.changes_matched);
    let spent = matching_after
        .matching
        .saturating_sub(matching_before.matching);
    Ok(Phase {
        rate,
        achieved: run.achieved(),
        errors: run.errors,
        deliveries,
        lost,
        extra,
        latencies,
        rss,
        cpu_per_delivery: cpu.map(|c| c / deliveries.max(1) as u32),
        matching_per_change: (changes > 0).then(|| spent / changes as u32),
    })
}

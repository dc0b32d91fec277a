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
//!
//! The history and the queries are this file; the matching cost is
//! `matching.rs`, the live part `live.rs`.

mod live;
mod matching;

use std::{collections::HashSet, time::Duration};

use pressroom::{
    proto::v1::PressRelease,
    search::{query::parse, standing::StandingQuery},
};

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    generate::{
        Generator, Rng, WIRE,
        vocabulary::{ADJECTIVES, HEADLINE_VERBS, NOUNS},
    },
    measure::{Summary, Verdict, ratio, thousands},
    replay::{Replayed, replay, typical},
};

/// Open streams in the live part.
const STREAMS: usize = 10_000;
/// Distinct queries among them.
const QUERIES: usize = 1_000;
/// The matching cost allowed per change.
const MATCHING_PER_CHANGE: Duration = Duration::from_millis(1);

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
    let costs =
        tokio::task::spawn_blocking(move || matching::matching_costs(&texts, &sample)).await??;
    costs.print();
    summary.verdict(
        "alerts",
        "matching CPU per change, 1,000 queries",
        format!("{:.0} µs", costs.matcher.as_secs_f64() * 1e6),
        "≤ 1 ms",
        Verdict::of(costs.matcher <= MATCHING_PER_CHANGE),
    );
    live::live(plan, &queries, summary).await
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

//! `list`: the latency of filtered `ListPressReleases` (first pages of 50)
//! on the corpus, one call at a time, over a set of filters from broad to
//! narrow. The reference is the same index walk in-process: `Store::list` on
//! the same `SledStore`, with the query the server builds from each filter
//! (`domain::filter::to_query`). sled locks its directory, so the reference
//! runs while the server is stopped, on the same files; the server then
//! starts again. Beside it, the echo server answering every call with a
//! page of 50 corpus releases from memory: what the transport alone costs
//! for a page that size. Reported, with no target.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pressroom::{
    domain::filter::to_query,
    proto::{
        Timestamp,
        v1::{ListPressReleasesRequest, ListPressReleasesResponse, PressReleaseFilter},
    },
    store::ListQuery,
};

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    echo::{Echo, EchoServer},
    generate::{Generator, Issuer},
    measure::{Latencies, Summary, Verdict, ms, ratio, thousands},
    server,
};

/// Page size asked for (the default).
const PAGE_SIZE: usize = 50;

/// Two years after the first publish time of the generator, a month.
const WINDOW_START: i64 = 1_700_000_000 + 365 * 86_400;
const WINDOW_END: i64 = WINDOW_START + 30 * 86_400;

/// The filters, broad to narrow, each with a label.
fn filters() -> Vec<(String, PressReleaseFilter)> {
    let generator = Generator::new(0, "list");
    let issuers: &[Issuer] = generator.issuers();
    let listed = issuers
        .iter()
        .find(|i| !i.tickers.is_empty())
        .and_then(|i| i.tickers.first())
        .map(|t| t.symbol.clone())
        .unwrap_or_default();
    let rare_issuer = issuers
        .get(issuers.len() / 2)
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    let window = |channels: &[&str]| PressReleaseFilter {
        channels: strings(channels),
        publish_time_after: Some(Timestamp {
            seconds: WINDOW_START,
            nanos: 0,
        }),
        publish_time_before: Some(Timestamp {
            seconds: WINDOW_END,
            nanos: 0,
        }),
        ..Default::default()
    };
    vec![
        ("none".into(), PressReleaseFilter::default()),
        (
            "channel Technology".into(),
            PressReleaseFilter {
                channels: strings(&["Technology"]),
                ..Default::default()
            },
        ),
        (
            "country DE".into(),
            PressReleaseFilter {
                countries: strings(&["DE"]),
                ..Default::default()
            },
        ),
        (
            "language en (and en-*)".into(),
            PressReleaseFilter {
                languages: strings(&["en"]),
                ..Default::default()
            },
        ),
        (
            "channel Energy AND country US".into(),
            PressReleaseFilter {
                channels: strings(&["Energy"]),
                countries: strings(&["US"]),
                ..Default::default()
            },
        ),
        (
            "subject Earnings AND industry Software".into(),
            PressReleaseFilter {
                subjects: strings(&["Earnings"]),
                industries: strings(&["Software"]),
                ..Default::default()
            },
        ),
        (
            format!("ticker {listed}"),
            PressReleaseFilter {
                tickers: vec![listed.clone()],
                ..Default::default()
            },
        ),
        (
            format!("issuer {rare_issuer}"),
            PressReleaseFilter {
                issuers: vec![rare_issuer.clone()],
                ..Default::default()
            },
        ),
        (
            "country AZ AND language az (rare)".into(),
            PressReleaseFilter {
                countries: strings(&["AZ"]),
                languages: strings(&["az"]),
                ..Default::default()
            },
        ),
        (
            "channels Sports OR Politics, a 30-day window".into(),
            window(&["Sports", "Politics"]),
        ),
    ]
}

/// Latencies and result counts of one filter.
struct PerFilter {
    latencies: Latencies,
    results: usize,
}

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== list: filtered ListPressReleases, first page of {PAGE_SIZE}, one call at a time, on {} releases in {}",
        thousands(corpus.records.len() as f64),
        corpus.engine()
    );
    let filters = filters();
    let mut queries: Vec<ListQuery> = Vec::with_capacity(filters.len());
    for (label, filter) in &filters {
        queries.push(to_query(Some(filter), "filter").map_err(|e| format!("{label}: {e}"))?);
    }
    let calls = plan.list_calls;
    let reference = corpus
        .offline(move |store| {
            let mut out: Vec<PerFilter> = queries
                .iter()
                .map(|_| PerFilter {
                    latencies: Latencies::default(),
                    results: 0,
                })
                .collect();
            for call in 0..calls + queries.len() {
                let i = call % queries.len();
                let started = Instant::now();
                let page = store.list(&queries[i], None, PAGE_SIZE + 1)?;
                let elapsed = started.elapsed();
                // The first call of each filter warms the cache.
                if call >= queries.len() {
                    out[i].latencies.push(elapsed);
                }
                out[i].results = page.len().min(PAGE_SIZE);
            }
            let plans = queries
                .iter()
                .map(|query| store.plan_of_list(query, PAGE_SIZE + 1))
                .collect::<BenchResult<Vec<_>>>()?;
            Ok((out, plans))
        })
        .await?;
    let (reference, plans) = reference;

    let addr = corpus.server().await?.addr;
    let mut client = server::client(server::connect(addr).await?);
    let mut on_server: Vec<PerFilter> = filters
        .iter()
        .map(|_| PerFilter {
            latencies: Latencies::default(),
            results: 0,
        })
        .collect();
    for call in 0..calls + filters.len() {
        let i = call % filters.len();
        let started = Instant::now();
        let page = client
            .list_press_releases(ListPressReleasesRequest {
                filter: Some(filters[i].1.clone()),
                page_size: PAGE_SIZE as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        let elapsed = started.elapsed();
        if call >= filters.len() {
            on_server[i].latencies.push(elapsed);
        }
        on_server[i].results = page.press_releases.len();
    }

    println!(
        "   {:<44} {:>7} {:>10} {:>10}",
        "filter", "results", "server p50", "walk p50"
    );
    let mut all_server = Latencies::default();
    let mut all_reference = Latencies::default();
    for (((label, _), server), reference) in filters.iter().zip(on_server).zip(reference) {
        if server.results != reference.results {
            return Err(format!(
                "{label}: the server listed {} releases, the index walk {}",
                server.results, reference.results
            )
            .into());
        }
        println!(
            "   {:<44} {:>7} {:>10} {:>10}",
            label,
            server.results,
            ms(server.latencies.p50()),
            ms(reference.latencies.p50())
        );
        all_server.extend(server.latencies);
        all_reference.extend(reference.latencies);
    }
    for ((label, _), plan) in filters.iter().zip(&plans) {
        if let Some(plan) = plan {
            println!("   plan, {label}: {plan}");
        }
    }
    drop(client);
    let page = ListPressReleasesResponse {
        press_releases: corpus.records.iter().take(PAGE_SIZE).cloned().collect(),
        next_page_token: "t".repeat(40),
    };
    let echo = EchoServer::start(
        Echo {
            list_page: Arc::new(page),
            ..Default::default()
        },
        &server::default_config()?,
    )
    .await?;
    let mut echo_client = server::client(server::connect(echo.addr).await?);
    let mut on_echo = Latencies::with_capacity(calls);
    for call in 0..calls + filters.len() {
        let started = Instant::now();
        echo_client
            .list_press_releases(ListPressReleasesRequest::default())
            .await?;
        if call >= filters.len() {
            on_echo.push(started.elapsed());
        }
    }
    drop(echo_client);
    echo.stop().await?;

    let line = |who: &str, l: &Latencies| {
        println!(
            "   {who:<12} p50 {}   p99 {}   ({} calls)",
            ms(l.p50()),
            ms(l.p99()),
            thousands(l.len() as f64)
        );
    };
    line("pressroom", &all_server);
    line("index walk", &all_reference);
    line("echo", &on_echo);
    println!("   (echo: a page of {PAGE_SIZE} releases from memory over the same transport)");
    let p99_ratio = secs(all_server.p99()) / secs(all_reference.p99());
    summary.verdict(
        "list",
        "p50 vs in-process index walk",
        ratio(secs(all_server.p50()) / secs(all_reference.p50())),
        "report",
        Verdict::Report,
    );
    summary.verdict(
        "list",
        "p99 vs in-process index walk",
        ratio(p99_ratio),
        "report",
        Verdict::Report,
    );
    summary.verdict(
        "list",
        "p50 vs walk + echo (store + transport)",
        ratio(secs(all_server.p50()) / (secs(all_reference.p50()) + secs(on_echo.p50()))),
        "report",
        Verdict::Report,
    );
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

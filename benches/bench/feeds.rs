//! `feeds`: the HTTP feeds on the corpus. Three kinds of request, each kept
//! [`IN_FLIGHT`] at a time, measured in alternating short rounds after a
//! warm-up of each: a full RSS feed of 50 releases for one channel; the
//! same request with the `If-None-Match` of that feed, answered 304
//! Not Modified (nothing is written meanwhile, so the tag holds); and, as
//! the reference, gRPC `ListPressReleases` of the same filter and page size,
//! which reads the same 50 records. Each gets its requests per second,
//! latency and the CPU time the whole process (server and clients) spends
//! per request. The target: a 304 costs at most 0.2× a full feed, in time
//! per request (the median of the ratios of adjacent rounds) and in CPU.

use std::time::{Duration, Instant};

use pressroom::proto::v1::{ListPressReleasesRequest, PressReleaseFilter};
use prost::Message as _;

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    measure::{
        Latencies, Summary, Verdict, cpu_time, kib, median, ms, per_second, ratio, thousands,
    },
    server,
};

/// Requests in flight (each on its own keep-alive connection, or HTTP/2
/// stream for gRPC).
const IN_FLIGHT: usize = 8;
/// Warm-up before the first round of each kind.
const WARM_UP: Duration = Duration::from_millis(500);
/// The channel the feed shows.
const CHANNEL: &str = "Technology";
/// Releases in the feed (the default limit).
const ITEMS: usize = 50;

/// The kinds of request measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A full RSS feed.
    Full,
    /// The same, conditional: a 304.
    NotModified,
    /// gRPC List of the same filter.
    List,
}

/// Requests made and their cost over some time.
#[derive(Default)]
struct Tally {
    requests: usize,
    elapsed: Duration,
    latencies: Latencies,
    bytes: usize,
    cpu: Duration,
    /// Requests per second of each round.
    rounds: Vec<f64>,
}

impl Tally {
    fn cpu_per_request(&self) -> Duration {
        self.cpu / self.requests.max(1) as u32
    }

    fn add(&mut self, round: Tally) {
        self.rounds.push(per_second(round.requests, round.elapsed));
        self.cpu += round.cpu;
        self.requests += round.requests;
        self.elapsed += round.elapsed;
        self.bytes += round.bytes;
        self.latencies.extend(round.latencies);
    }
}

/// What every request of a kind needs.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    url: String,
    etag: String,
    grpc: Vec<tonic::transport::Channel>,
}

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== feeds: GET /feeds/rss?channel={CHANNEL} ({ITEMS} releases), the same with If-None-Match (304), and gRPC List of the same filter; {IN_FLIGHT} in flight, on {} releases",
        thousands(corpus.records.len() as f64)
    );
    let server = corpus.server().await?;
    let feeds_addr = server
        .feeds_addr
        .ok_or("the corpus server serves no feeds")?;
    let url = format!("http://{feeds_addr}/feeds/rss?channel={CHANNEL}");
    // reqwest is built with rustls but no crypto provider; plain HTTP
    // here, but the client wants one all the same.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()?;
    let first = http.get(&url).send().await?;
    let etag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .ok_or("the feed has no ETag")?
        .to_string();
    let body = first.bytes().await?;
    let feed = feed_rs::parser::parse(&body[..])?;
    let grpc = server::connections(server.addr, IN_FLIGHT).await?;
    let listed = server::client(grpc[0].clone())
        .list_press_releases(list_request())
        .await?
        .into_inner()
        .press_releases;
    let feed_names: Vec<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
    let list_names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    if feed_names != list_names || feed_names.len() != ITEMS {
        return Err(format!(
            "the feed shows {} releases, List {}, and they differ",
            feed_names.len(),
            list_names.len()
        )
        .into());
    }
    let target = Target {
        http,
        url,
        etag,
        grpc,
    };

    let kinds = [Kind::Full, Kind::NotModified, Kind::List];
    for kind in kinds {
        drive(&target, kind, WARM_UP).await?;
    }
    let mut tallies: Vec<Tally> = kinds.iter().map(|_| Tally::default()).collect();
    for _ in 0..plan.feeds_rounds {
        for (kind, tally) in kinds.iter().zip(&mut tallies) {
            tally.add(drive(&target, *kind, plan.feeds_round).await?);
        }
    }
    let [full, not_modified, list] =
        <[Tally; 3]>::try_from(tallies).map_err(|_| "three tallies expected")?;

    let line = |who: &str, tally: &Tally| {
        println!(
            "   {who:<14} {:>8} requests/s   p50 {}   p99 {}   {:>6.0} µs CPU per request   mean response {}",
            thousands(per_second(tally.requests, tally.elapsed)),
            ms(tally.latencies.p50()),
            ms(tally.latencies.p99()),
            tally.cpu_per_request().as_secs_f64() * 1e6,
            kib(tally.bytes as f64 / tally.requests.max(1) as f64)
        );
    };
    line("full feed", &full);
    line("304", &not_modified);
    line("gRPC List", &list);
    println!(
        "   ({} round(s) of {:.0} s each, alternating; CPU is the whole process: server and clients)",
        plan.feeds_rounds,
        plan.feeds_round.as_secs_f64()
    );
    let pairs = |a: &Tally, b: &Tally| -> Vec<f64> {
        a.rounds
            .iter()
            .zip(&b.rounds)
            .map(|(a, b)| a / b.max(1e-9))
            .collect()
    };
    // Time per request of a 304 over that of a full feed = full rate over
    // 304 rate.
    let time_pairs = pairs(&full, &not_modified);
    println!(
        "   time per 304 / time per full feed, adjacent rounds: {}",
        time_pairs
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let time_ratio = median(&time_pairs);
    let cpu_ratio = not_modified.cpu_per_request().as_secs_f64()
        / full.cpu_per_request().as_secs_f64().max(1e-9);
    summary.verdict(
        "feeds",
        "time per 304 vs per full feed (median of pairs)",
        ratio(time_ratio),
        "≤ 0.20×",
        Verdict::of(time_ratio <= 0.2),
    );
    summary.verdict(
        "feeds",
        "CPU per 304 vs per full feed",
        ratio(cpu_ratio),
        "≤ 0.20×",
        Verdict::of(cpu_ratio <= 0.2),
    );
    summary.verdict(
        "feeds",
        "full feed requests/s vs gRPC List (median of pairs)",
        ratio(median(&pairs(&full, &list))),
        "report",
        Verdict::Report,
    );
    Ok(())
}

fn list_request() -> ListPressReleasesRequest {
    ListPressReleasesRequest {
        filter: Some(PressReleaseFilter {
            channels: vec![CHANNEL.into()],
            ..Default::default()
        }),
        page_size: ITEMS as i32,
        ..Default::default()
    }
}

/// Keeps [`IN_FLIGHT`] requests of `kind` going for `duration`.
async fn drive(target: &Target, kind: Kind, duration: Duration) -> BenchResult<Tally> {
    let cpu = cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for i in 0..IN_FLIGHT {
        let target = target.clone();
        let mut grpc = server::client(target.grpc[i % target.grpc.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let call = Instant::now();
                let bytes = match kind {
                    Kind::List => {
                        let page = grpc.list_press_releases(list_request()).await?;
                        page.get_ref().encoded_len()
                    }
                    Kind::Full | Kind::NotModified => {
                        let mut request = target.http.get(&target.url);
                        if kind == Kind::NotModified {
                            request = request.header("if-none-match", &target.etag);
                        }
                        let response = request.send().await?;
                        let status = response.status().as_u16();
                        let expected = if kind == Kind::Full { 200 } else { 304 };
                        if status != expected {
                            return Err(format!("expected {expected}, got {status}").into());
                        }
                        response.bytes().await?.len()
                    }
                };
                tally.latencies.push(call.elapsed());
                tally.requests += 1;
                tally.bytes += bytes;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(tally)
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await??;
        total.requests += tally.requests;
        total.bytes += tally.bytes;
        total.latencies.extend(tally.latencies);
    }
    total.elapsed = started.elapsed();
    total.cpu = cpu
        .zip(cpu_time())
        .map(|(a, b)| b.saturating_sub(a))
        .unwrap_or_default();
    Ok(total)
}

//! `search`: `SearchPressReleases` latency on the corpus (first pages of
//! 20, one query at a time) and the indexing rate, against tantivy
//! in-process on the same documents: an index in this benchmark with the
//! server's kind of schema (six English-stemmed text fields with positions,
//! the id stored, the facets as strings, the publish time), built from the
//! same records, queried with the same query strings through tantivy's own
//! query parser (the same fields and boosts, every word required).
//!
//! The indexing rate is the server's rebuild of its index from the store at
//! the corpus' first start (with nothing else running), against tantivy
//! indexing the same documents with the same writer heap. The query
//! reference is measured twice: plain (top 20, total count, stored ids),
//! which is the target's reference, and with the highlights the server also
//! makes, to show what they cost.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use pressroom::{
    proto::v1::{PressRelease, SearchPressReleasesRequest, press_release::BodyFormat},
    store::facet_values,
};
use prost::Message as _;
use tantivy::{
    Index, IndexReader, ReloadPolicy, TantivyDocument,
    collector::{Count, TopDocs},
    query::QueryParser,
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions, Value,
    },
    snippet::SnippetGenerator,
};

use crate::{
    BenchResult, Plan,
    corpus::Corpus,
    echo::{Echo, EchoServer},
    measure::{Latencies, Summary, Verdict, kib, ms, per_second, ratio, thousands},
    server,
};

/// Results per page (the default).
const PAGE_SIZE: usize = 20;
/// The server's indexing heap.
const WRITER_HEAP: usize = 64 * 1024 * 1024;
/// The server commits every this many documents while catching up.
const COMMIT_EVERY: usize = 20_000;

/// The queries, in the server's query language (which tantivy's parser
/// reads the same way for these forms).
const QUERIES: &[&str] = &[
    "solar",
    "quarterly results",
    "\"battery factory\"",
    "acquisition OR merger",
    "headline:partnership",
    "cloud -outage",
    "hydrogen turbine",
    "lidar",
    "desalination OR microgrid",
    "record revenue growth",
    "customers",
];

/// The reference index and what its queries need.
struct Reference {
    index: Index,
    reader: IndexReader,
    parser: QueryParser,
    id: Field,
    headline: Field,
    body: Field,
    /// Position in the corpus of each id.
    by_id: HashMap<String, usize>,
    /// The plain text of each body, as indexed.
    bodies: Vec<String>,
}

pub async fn run(plan: &Plan, corpus: &mut Corpus, summary: &mut Summary) -> BenchResult<()> {
    println!(
        "\n== search: SearchPressReleases, first page of {PAGE_SIZE}, one query at a time, on {} releases; indexing rate",
        thousands(corpus.records.len() as f64)
    );
    let addr = corpus.server().await?.addr;
    let count = corpus.records.len();
    let rebuilt = corpus
        .rebuilt
        .as_ref()
        .map(|r| r.elapsed)
        .ok_or("the corpus server started without rebuilding its index")?;

    let records = corpus.records.clone();
    let dir = server::temp_dir()?;
    let path = dir.path().to_path_buf();
    let (reference, indexing) =
        tokio::task::spawn_blocking(move || build_reference(&records, &path)).await??;

    let server_rate = per_second(count, rebuilt);
    let reference_rate = per_second(count, indexing);
    println!(
        "   indexing   pressroom {:>7} releases/s (rebuild at start: {:.1} s)   tantivy {:>7} releases/s ({:.1} s)",
        thousands(server_rate),
        rebuilt.as_secs_f64(),
        thousands(reference_rate),
        indexing.as_secs_f64()
    );

    let mut client = server::client(server::connect(addr).await?);
    let calls = plan.search_calls;
    let n = QUERIES.len();
    let mut on_server: Vec<(Latencies, i32)> = vec![(Latencies::default(), 0); n];
    let mut first_page = None;
    for call in 0..calls + n {
        let i = call % n;
        let started = Instant::now();
        let page = client
            .search_press_releases(SearchPressReleasesRequest {
                query: QUERIES[i].to_string(),
                page_size: PAGE_SIZE as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        let elapsed = started.elapsed();
        if call >= n {
            on_server[i].0.push(elapsed);
        }
        on_server[i].1 = page.total_size;
        if first_page.is_none() {
            first_page = Some(page);
        }
    }
    drop(client);
    let page = first_page.ok_or("no search was made")?;
    let echo_bytes = page.encoded_len();
    let echo = EchoServer::start(
        Echo {
            search_page: Arc::new(page),
            ..Default::default()
        },
        &server::default_config()?,
    )
    .await?;
    let mut echo_client = server::client(server::connect(echo.addr).await?);
    let mut on_echo = Latencies::with_capacity(calls);
    for call in 0..calls + n {
        let started = Instant::now();
        echo_client
            .search_press_releases(SearchPressReleasesRequest::default())
            .await?;
        if call >= n {
            on_echo.push(started.elapsed());
        }
    }
    drop(echo_client);
    echo.stop().await?;

    let records = corpus.records.clone();
    let (plain, highlighted) = tokio::task::spawn_blocking(move || {
        let plain = reference.query_all(calls, &records, false)?;
        let highlighted = reference.query_all(calls, &records, true)?;
        drop(reference);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((plain, highlighted))
    })
    .await??;
    drop(dir);

    println!(
        "   {:<28} {:>8} {:>8} {:>10} {:>10} {:>12}",
        "query", "matches", "tantivy", "server p50", "tantivy p50", "+highlights"
    );
    let mut all_server = Latencies::default();
    let mut all_plain = Latencies::default();
    let mut all_highlighted = Latencies::default();
    for (i, query) in QUERIES.iter().enumerate() {
        let (server_latencies, total) = &on_server[i];
        let (plain_latencies, plain_total) = &plain[i];
        let (highlighted_latencies, _) = &highlighted[i];
        println!(
            "   {:<28} {:>8} {:>8} {:>10} {:>10} {:>12}",
            query,
            thousands(*total as f64),
            thousands(*plain_total as f64),
            ms(server_latencies.p50()),
            ms(plain_latencies.p50()),
            ms(highlighted_latencies.p50())
        );
        all_server.extend(server_latencies.clone());
        all_plain.extend(plain_latencies.clone());
        all_highlighted.extend(highlighted_latencies.clone());
    }
    let line = |who: &str, l: &Latencies| {
        println!(
            "   {who:<22} p50 {}   p99 {}   ({} queries)",
            ms(l.p50()),
            ms(l.p99()),
            thousands(l.len() as f64)
        );
    };
    line("pressroom", &all_server);
    line("tantivy", &all_plain);
    line("tantivy + highlights", &all_highlighted);
    line("echo", &on_echo);
    println!(
        "   (echo: the server's first page for {:?}, {}, from memory over the same transport)",
        QUERIES[0],
        kib(echo_bytes as f64)
    );
    let bound = all_plain.p99().mul_f64(1.5) + Duration::from_millis(1);
    summary.verdict(
        "search",
        "query p99 vs tantivy p99 × 1.5 + 1 ms",
        format!("{} / {}", ms(all_server.p99()), ms(bound)),
        "≤ 1.5× + 1 ms",
        Verdict::of(all_server.p99() <= bound),
    );
    summary.verdict(
        "search",
        "query p99 vs tantivy p99",
        ratio(all_server.p99().as_secs_f64() / all_plain.p99().as_secs_f64().max(1e-9)),
        "report",
        Verdict::Report,
    );
    summary.verdict(
        "search",
        "indexing rate vs tantivy",
        ratio(server_rate / reference_rate),
        "report",
        Verdict::Report,
    );
    Ok(())
}

/// Builds the reference index in `path` from `records`; returns it and the
/// time the indexing took (documents prepared beforehand).
fn build_reference(
    records: &[PressRelease],
    path: &std::path::Path,
) -> BenchResult<(Reference, Duration)> {
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let headline = builder.add_text_field("headline", stemmed.clone());
    let subheadline = builder.add_text_field("subheadline", stemmed.clone());
    let summary = builder.add_text_field("summary", stemmed.clone());
    let body = builder.add_text_field("body", stemmed.clone());
    let issuer = builder.add_text_field("issuer", stemmed.clone());
    let keywords = builder.add_text_field("keywords", stemmed);
    let facet_fields: Vec<Field> = (0..7)
        .map(|i| builder.add_text_field(&format!("facet{i}"), STRING))
        .collect();
    let publish_time = builder.add_i64_field("publish_time", INDEXED | FAST);
    let index = Index::create_in_dir(path, builder.build())?;

    let bodies: Vec<String> = records.iter().map(plain_body).collect();
    let mut by_id = HashMap::with_capacity(records.len());
    let mut documents = Vec::with_capacity(records.len());
    for (i, (record, plain)) in records.iter().zip(&bodies).enumerate() {
        let key = record.name.trim_start_matches("pressReleases/").to_string();
        let mut doc = TantivyDocument::default();
        doc.add_text(id, &key);
        doc.add_text(headline, &record.headline);
        doc.add_text(subheadline, &record.subheadline);
        doc.add_text(summary, &record.summary);
        doc.add_text(body, plain);
        if let Some(org) = &record.issuer {
            doc.add_text(issuer, &org.name);
        }
        for keyword in &record.keywords {
            doc.add_text(keywords, keyword);
        }
        for (facet, value) in facet_values(record) {
            doc.add_text(facet_fields[(facet.tag() as usize - 1) % 7], value);
        }
        let time = record.publish_time.unwrap_or_default();
        doc.add_i64(
            publish_time,
            time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000,
        );
        documents.push(doc);
        by_id.insert(key, i);
    }

    let started = Instant::now();
    let mut writer: tantivy::IndexWriter = index.writer(WRITER_HEAP)?;
    for (i, doc) in documents.into_iter().enumerate() {
        writer.add_document(doc)?;
        if (i + 1) % COMMIT_EVERY == 0 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    reader.reload()?;
    let indexing = started.elapsed();
    drop(writer);

    let mut parser = QueryParser::for_index(
        &index,
        vec![headline, subheadline, summary, body, issuer, keywords],
    );
    parser.set_conjunction_by_default();
    for (field, boost) in [
        (headline, 3.0),
        (subheadline, 2.0),
        (issuer, 2.0),
        (summary, 1.5),
        (keywords, 1.5),
        (body, 1.0),
    ] {
        parser.set_field_boost(field, boost);
    }
    Ok((
        Reference {
            index,
            reader,
            parser,
            id,
            headline,
            body,
            by_id,
            bodies,
        },
        indexing,
    ))
}

impl Reference {
    /// Runs every query round-robin, `calls` in all after a warm-up round;
    /// per query, the latencies and the total matches.
    fn query_all(
        &self,
        calls: usize,
        records: &[PressRelease],
        highlights: bool,
    ) -> BenchResult<Vec<(Latencies, usize)>> {
        let n = QUERIES.len();
        let mut out: Vec<(Latencies, usize)> = vec![(Latencies::default(), 0); n];
        for call in 0..calls + n {
            let i = call % n;
            let started = Instant::now();
            let total = self.query(QUERIES[i], records, highlights)?;
            let elapsed = started.elapsed();
            if call >= n {
                out[i].0.push(elapsed);
            }
            out[i].1 = total;
        }
        let _ = &self.index;
        Ok(out)
    }

    /// One query: the top page, the total, the ids (and the highlights).
    fn query(&self, text: &str, records: &[PressRelease], highlights: bool) -> BenchResult<usize> {
        let query = self.parser.parse_query(text)?;
        let searcher = self.reader.searcher();
        let collector = (TopDocs::with_limit(PAGE_SIZE).order_by_score(), Count);
        let (top, total) = searcher.search(&*query, &collector)?;
        let mut found = Vec::with_capacity(top.len());
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(key) = doc.get_first(self.id).and_then(|v| v.as_str())
                && let Some(&i) = self.by_id.get(key)
            {
                found.push(i);
            }
        }
        if highlights {
            let mut headline = SnippetGenerator::create(&searcher, &*query, self.headline)?;
            let mut body = SnippetGenerator::create(&searcher, &*query, self.body)?;
            headline.set_max_num_chars(300);
            body.set_max_num_chars(200);
            for i in found {
                let _ = headline.snippet(&records[i].headline);
                let _ = body.snippet(&self.bodies[i]);
            }
        }
        Ok(total)
    }
}

/// The body as the server indexes it: HTML tags dropped, entities decoded.
fn plain_body(release: &PressRelease) -> String {
    if release.body_format() == BodyFormat::Html {
        let text = ammonia::Builder::empty().clean(&release.body).to_string();
        html_escape::decode_html_entities(&text).into_owned()
    } else {
        release.body.clone()
    }
}

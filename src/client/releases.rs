//! The verbs on press releases: `create`, `get`, `list`, `update`,
//! `withdraw`, `search`, `stats`.

use std::{io::Read, path::PathBuf};

use super::{
    ClientArgs, ClientError, connect,
    filter::{FilterArgs, parse_time},
    output::{self, Format, OutputArgs},
};
use crate::{
    domain::name::COLLECTION,
    formats,
    proto::{
        FieldMask, Timestamp,
        v1::{
            CreatePressReleaseRequest, Dateline, DeletePressReleaseRequest, GetPressReleaseRequest,
            GetPressReleaseStatsRequest, ListPressReleasesRequest, Organization, PressRelease,
            SearchPressReleasesRequest, Source, Ticker, UpdatePressReleaseRequest,
            press_release::BodyFormat,
        },
    },
};

/// `pressroom create`
#[derive(Clone, Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// A JSON file with the press release (proto3 JSON mapping); `-` reads
    /// stdin. The flags below set fields on top of it.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// The headline.
    #[arg(long)]
    headline: Option<String>,
    /// The body.
    #[arg(long)]
    body: Option<String>,
    /// The body is HTML (sanitised by the server).
    #[arg(long)]
    html: bool,
    /// A summary.
    #[arg(long)]
    summary: Option<String>,
    /// BCP-47 language, e.g. `en`.
    #[arg(long)]
    language: Option<String>,
    /// A distribution channel (repeatable).
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// The dateline's country, ISO 3166-1 alpha-2.
    #[arg(long)]
    country: Option<String>,
    /// The issuer's name.
    #[arg(long)]
    issuer: Option<String>,
    /// An issuer's ticker, `EXCHANGE:SYMBOL` (repeatable).
    #[arg(long = "ticker")]
    tickers: Vec<String>,
    /// When it is published (RFC 3339); defaults to now.
    #[arg(long, value_parser = parse_time)]
    publish_time: Option<Timestamp>,
    /// Embargoed until this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    embargo_time: Option<Timestamp>,
    /// The source: provider, with `--item-id`.
    #[arg(long)]
    provider: Option<String>,
    /// The provider's id of the item.
    #[arg(long)]
    item_id: Option<String>,
    /// Idempotency key: a retry with it returns the first release.
    #[arg(long)]
    request_id: Option<String>,
}

/// `pressroom get NAME`
#[derive(Clone, Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// `pressReleases/{id}` (or just the id).
    name: String,
}

/// `pressroom list`
#[derive(Clone, Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// At most this many, newest first (pages are followed).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Also embargoed releases (publisher key).
    #[arg(long)]
    include_embargoed: bool,
}

/// `pressroom update NAME`
#[derive(Clone, Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// `pressReleases/{id}` (or just the id).
    name: String,
    /// A JSON file with the new values of the fields (proto3 JSON mapping);
    /// `-` reads stdin.
    #[arg(short = 'f', long)]
    file: PathBuf,
    /// The fields to change, e.g. `headline,channels`; `*` for all. Without
    /// it, the fields set in the file.
    #[arg(long, value_delimiter = ',')]
    mask: Vec<String>,
    /// The etag to change; without it the current one is fetched first.
    #[arg(long)]
    etag: Option<String>,
}

/// `pressroom withdraw NAME`
#[derive(Clone, Debug, clap::Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// `pressReleases/{id}` (or just the id).
    name: String,
    /// Why it is withdrawn (kept on the tombstone).
    #[arg(long)]
    reason: String,
    /// Only if this is still the etag.
    #[arg(long)]
    etag: Option<String>,
}

/// `pressroom search QUERY`
#[derive(Clone, Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// The query: words, "phrases", OR, -excluded, headline:/body:/issuer:.
    query: String,
    /// At most this many results (pages are followed).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// `pressroom stats`
#[derive(Clone, Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// A per-day histogram of the last N days (today included).
    #[arg(long)]
    days: Option<u32>,
}

/// `pressReleases/{id}` from a name or a bare id.
fn name(text: &str) -> String {
    if text.starts_with(COLLECTION) {
        text.to_string()
    } else {
        format!("{COLLECTION}{text}")
    }
}

/// Reads a file, or stdin for `-`.
fn read_input(path: &PathBuf) -> Result<String, ClientError> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|source| ClientError::File {
        path: path.clone(),
        source,
    })?;
    Ok(text)
}

/// Parses a press release from a JSON file.
fn read_release(path: &PathBuf) -> Result<PressRelease, ClientError> {
    formats::parse_jsonl_line(&read_input(path)?)
        .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))
}

pub(super) async fn create(args: CreateArgs) -> Result<(), ClientError> {
    let mut release = match &args.file {
        Some(path) => read_release(path)?,
        None => PressRelease::default(),
    };
    let set = |field: &mut String, value: &Option<String>| {
        if let Some(value) = value {
            field.clone_from(value);
        }
    };
    set(&mut release.headline, &args.headline);
    set(&mut release.body, &args.body);
    set(&mut release.summary, &args.summary);
    set(&mut release.language, &args.language);
    if args.html {
        release.body_format = BodyFormat::Html as i32;
    }
    release.channels.extend(args.channels.iter().cloned());
    if let Some(country) = &args.country {
        release
            .dateline
            .get_or_insert_with(Dateline::default)
            .country_code = country.clone();
    }
    if args.issuer.is_some() || !args.tickers.is_empty() {
        let issuer = release.issuer.get_or_insert_with(Organization::default);
        set(&mut issuer.name, &args.issuer);
        for ticker in &args.tickers {
            let (exchange, symbol) = ticker.split_once(':').unwrap_or(("", ticker));
            issuer.tickers.push(Ticker {
                exchange: exchange.into(),
                symbol: symbol.into(),
            });
        }
    }
    release.publish_time = args.publish_time.or(release.publish_time);
    release.embargo_time = args.embargo_time.or(release.embargo_time);
    if args.provider.is_some() || args.item_id.is_some() {
        let source = release.source.get_or_insert_with(Source::default);
        set(&mut source.provider, &args.provider);
        set(&mut source.item_id, &args.item_id);
    }
    let mut client = connect(&args.client).await?;
    let created = client
        .create_press_release(CreatePressReleaseRequest {
            press_release: Some(release),
            request_id: args.request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::release(&created, args.output.resolve(false))
}

pub(super) async fn get(args: GetArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let release = client
        .get_press_release(GetPressReleaseRequest {
            name: name(&args.name),
        })
        .await?
        .into_inner();
    output::release(&release, args.output.resolve(false))
}

pub(super) async fn list(args: ListArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let filter = args.filter.to_filter();
    let mut found = Vec::new();
    let mut page_token = String::new();
    while found.len() < args.limit {
        let page = client
            .list_press_releases(ListPressReleasesRequest {
                filter: filter.clone(),
                page_size: (args.limit - found.len()).min(500) as i32,
                page_token,
                include_embargoed: args.include_embargoed,
            })
            .await?
            .into_inner();
        found.extend(page.press_releases);
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    output::releases(&found, args.output.resolve(true))
}

pub(super) async fn update(args: UpdateArgs) -> Result<(), ClientError> {
    let mut patch = read_release(&args.file)?;
    patch.name = name(&args.name);
    let mut client = connect(&args.client).await?;
    patch.etag = match args.etag {
        Some(etag) => etag,
        None => {
            client
                .get_press_release(GetPressReleaseRequest {
                    name: patch.name.clone(),
                })
                .await?
                .into_inner()
                .etag
        }
    };
    let updated = client
        .update_press_release(UpdatePressReleaseRequest {
            press_release: Some(patch),
            update_mask: (!args.mask.is_empty()).then_some(FieldMask { paths: args.mask }),
        })
        .await?
        .into_inner();
    output::release(&updated, args.output.resolve(false))
}

pub(super) async fn withdraw(args: WithdrawArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let tombstone = client
        .delete_press_release(DeletePressReleaseRequest {
            name: name(&args.name),
            etag: args.etag.unwrap_or_default(),
            reason: args.reason,
        })
        .await?
        .into_inner();
    output::release(&tombstone, args.output.resolve(false))
}

pub(super) async fn search(args: SearchArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let filter = args.filter.to_filter();
    let mut results = Vec::new();
    let mut page_token = String::new();
    let mut total = 0;
    while results.len() < args.limit {
        let page = client
            .search_press_releases(SearchPressReleasesRequest {
                query: args.query.clone(),
                filter: filter.clone(),
                page_size: (args.limit - results.len()).min(100) as i32,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        total = page.total_size;
        results.extend(page.results);
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    match args.output.resolve(true) {
        Format::Table => {
            let mut table = output::table(&["score", "name", "headline", "match"]);
            for result in &results {
                let release = result.press_release.clone().unwrap_or_default();
                let snippet = result
                    .highlights
                    .iter()
                    .find(|h| h.field == "body")
                    .or(result.highlights.first())
                    .map(|h| h.snippet.replace("<mark>", "[").replace("</mark>", "]"))
                    .unwrap_or_default();
                table.add_row(vec![
                    format!("{:.2}", result.score),
                    release.name,
                    crate::text::cut(&release.headline, 60),
                    crate::text::cut(&snippet, 80),
                ]);
            }
            output::line(&table.to_string())?;
            output::line(&format!("{} of {total} matching", results.len()))
        }
        Format::Json => output::json(&results, Format::Json),
        Format::Jsonl => results
            .iter()
            .try_for_each(|r| output::json(r, Format::Jsonl)),
        Format::Ninjs => {
            let found: Vec<PressRelease> = results
                .into_iter()
                .filter_map(|r| r.press_release)
                .collect();
            output::releases(&found, Format::Ninjs)
        }
    }
}

pub(super) async fn stats(args: StatsArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let (start, end) = match args.days {
        Some(days) if days > 0 => {
            let today = jiff::Timestamp::now()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date();
            let first = today
                .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
                .map_err(|e| ClientError::Usage(format!("--days: {e}")))?;
            (first.to_string(), today.to_string())
        }
        _ => (String::new(), String::new()),
    };
    let stats = client
        .get_press_release_stats(GetPressReleaseStatsRequest {
            filter: args.filter.to_filter(),
            histogram_start_day: start,
            histogram_end_day: end,
        })
        .await?
        .into_inner();
    match args.output.resolve(false) {
        Format::Table => {
            let mut table = output::table(&["published", "count"]);
            table.add_row(vec!["in all".to_string(), stats.total.to_string()]);
            table.add_row(vec![
                "last 24 hours".to_string(),
                stats.last_24_hours.to_string(),
            ]);
            table.add_row(vec![
                "last 365 days".to_string(),
                stats.last_365_days.to_string(),
            ]);
            for day in &stats.histogram {
                table.add_row(vec![day.day.clone(), day.count.to_string()]);
            }
            output::line(&table.to_string())
        }
        format => {
            output::not_ninjs(format, "stats")?;
            output::json(&stats, format)
        }
    }
}

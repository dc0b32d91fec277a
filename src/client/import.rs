//! `pressroom import`: reads JSON Lines, JSON files (press releases in the
//! proto3 JSON mapping, or ninjs), directories of them, RSS 2.0 / Atom
//! feeds, NewsML-G2 and NewsML 1.2 documents (told apart by their first
//! element), and streams the press releases through
//! `ImportPressReleases` (the server commits them in large batches). Shows a
//! progress bar on a terminal, plain periodic lines otherwise, and ends with
//! a summary naming each item that failed and why. `--dry-run` checks every
//! item with the server's own validation, locally, and writes nothing.

use std::{
    io::{BufRead, IsTerminal},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{ClientArgs, ClientError, connect, output};
use crate::{
    domain,
    formats::{self, FeedItem},
    proto::v1::ImportPressReleasesRequest,
};

/// `pressroom import`
#[derive(Clone, Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Files or directories: `.jsonl`/`.ndjson` (one press release or ninjs
    /// object per line), `.json` (a press release, or ninjs: one object or an
    /// array), `.xml`/`.rss`/`.atom` (RSS, Atom, NewsML-G2, NewsML 1.2); `-`
    /// reads JSON Lines from stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The source provider for feed, NewsML and ninjs items; by default the
    /// one the document names (a feed's site host, NewsML's provider).
    #[arg(long)]
    provider: Option<String>,
    /// Check every item without writing anything.
    #[arg(long)]
    dry_run: bool,
}

/// An item to import and where it came from.
struct Item {
    origin: String,
    request: ImportPressReleasesRequest,
}

/// One input, in the order given.
enum Input {
    Stdin,
    Lines(PathBuf),
    Json(PathBuf),
    Feed(PathBuf),
}

/// How the import went.
#[derive(Default)]
struct Summary {
    /// Items read and sent (or checked).
    sent: u64,
    /// Items that could not be read at all.
    unreadable: usize,
    created: i64,
    updated: i64,
    duplicates: i64,
    /// Where and why.
    failed: Vec<(String, String)>,
}

pub(super) async fn import(args: ImportArgs) -> Result<(), ClientError> {
    let inputs = collect_inputs(&args.paths)?;
    let total = count_items(&inputs, args.provider.as_deref());
    let progress = Progress::new(total);
    let provider = args.provider.clone();
    // Items are read on a blocking thread and handed over a small buffer.
    let (sender, mut receiver) = mpsc::channel::<Result<Item, (String, String)>>(256);
    let reader =
        tokio::task::spawn_blocking(move || read_inputs(&inputs, provider.as_deref(), &sender));

    let mut summary = Summary::default();
    if args.dry_run {
        while let Some(item) = receiver.recv().await {
            match item {
                Ok(item) => {
                    summary.sent += 1;
                    let release = item.request.press_release.unwrap_or_default();
                    match domain::validate_new(release) {
                        Ok(_) => summary.created += 1,
                        Err(error) => summary.failed.push((item.origin, error.to_string())),
                    }
                    progress.advance();
                }
                Err(failure) => {
                    summary.unreadable += 1;
                    summary.failed.push(failure);
                }
            }
        }
    } else {
        let origins: Arc<Mutex<Vec<String>>> = Arc::default();
        let unreadable: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (noted, skipped, counter) = (
            Arc::clone(&origins),
            Arc::clone(&unreadable),
            progress.clone(),
        );
        let (requests, stream_receiver) = mpsc::channel::<ImportPressReleasesRequest>(256);
        tokio::spawn(async move {
            while let Some(item) = receiver.recv().await {
                match item {
                    Ok(item) => {
                        noted
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(item.origin);
                        if requests.send(item.request).await.is_err() {
                            break;
                        }
                        counter.advance();
                    }
                    Err(failure) => skipped
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(failure),
                }
            }
        });
        let mut client = connect(&args.client).await?;
        let response = client
            .import_press_releases(ReceiverStream::new(stream_receiver))
            .await?
            .into_inner();
        let origins = origins.lock().unwrap_or_else(PoisonError::into_inner);
        summary.sent = origins.len() as u64;
        summary.created = response.created;
        summary.duplicates = response.duplicates;
        summary.updated = response.updated;
        summary.failed = unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        summary.unreadable = summary.failed.len();
        for failure in response.failed {
            let origin = usize::try_from(failure.index)
                .ok()
                .and_then(|i| origins.get(i).cloned())
                .unwrap_or_else(|| format!("item {}", failure.index));
            let code = format!("{:?}", tonic::Code::from_i32(failure.code));
            summary
                .failed
                .push((origin, format!("{code}: {}", failure.message)));
        }
    }
    reader
        .await
        .map_err(|e| ClientError::Other(Box::new(e)))??;
    progress.finish();
    report(&summary, args.dry_run)
}

fn report(summary: &Summary, dry_run: bool) -> Result<(), ClientError> {
    let verb = if dry_run {
        "would be created"
    } else {
        "created"
    };
    output::line(&format!(
        "{} items read: {} {verb}, {} duplicates, {} failed, {} updated",
        summary.sent as usize + summary.unreadable,
        summary.created,
        summary.duplicates,
        summary.failed.len(),
        summary.updated
    ))?;
    for (origin, why) in &summary.failed {
        output::line(&format!("  {origin}: {why}"))?;
    }
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(ClientError::Invalid(format!(
            "{} items failed",
            summary.failed.len()
        )))
    }
}

/// Expands directories and tells formats apart by extension.
fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, ClientError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if path.is_dir() {
            let listing = std::fs::read_dir(path).map_err(|source| ClientError::File {
                path: path.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = listing
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                if let Some(input) = classify(&file) {
                    inputs.push(input);
                }
            }
        } else {
            inputs.push(classify(path).ok_or_else(|| {
                ClientError::Usage(format!(
                    "{}: unknown kind of file; use .jsonl, .json, .xml, .rss or .atom",
                    path.display()
                ))
            })?);
        }
    }
    Ok(inputs)
}

fn classify(path: &Path) -> Option<Input> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "jsonl" | "ndjson" => Some(Input::Lines(path.to_path_buf())),
        "json" => Some(Input::Json(path.to_path_buf())),
        "xml" | "rss" | "atom" => Some(Input::Feed(path.to_path_buf())),
        _ => None,
    }
}

/// How many items there are, for the progress bar (None for stdin).
fn count_items(inputs: &[Input], provider: Option<&str>) -> Option<u64> {
    let mut total = 0u64;
    for input in inputs {
        total += match input {
            Input::Stdin => return None,
            Input::Json(path) => std::fs::read(path)
                .ok()
                .and_then(|bytes| formats::parse_document(&bytes, provider).ok())
                .map_or(1, |items| items.len() as u64),
            Input::Lines(path) => std::fs::File::open(path)
                .map(|f| {
                    std::io::BufReader::new(f)
                        .lines()
                        .map_while(Result::ok)
                        .filter(|l| !l.trim().is_empty())
                        .count() as u64
                })
                .unwrap_or(0),
            Input::Feed(path) => std::fs::read(path)
                .ok()
                .and_then(|bytes| formats::parse_document(&bytes, provider).ok())
                .map_or(0, |items| items.len() as u64),
        };
    }
    Some(total)
}

/// Reads every input in order, sending items (or what could not be read).
fn read_inputs(
    inputs: &[Input],
    provider: Option<&str>,
    sender: &mpsc::Sender<Result<Item, (String, String)>>,
) -> Result<(), ClientError> {
    let send = |item: Result<Item, (String, String)>| sender.blocking_send(item).is_ok();
    for input in inputs {
        match input {
            Input::Stdin => {
                let stdin = std::io::stdin();
                for (n, line) in stdin.lock().lines().enumerate() {
                    let line = line.map_err(|source| ClientError::File {
                        path: "(stdin)".into(),
                        source,
                    })?;
                    if !line.trim().is_empty()
                        && !send(line_item(&format!("stdin:{}", n + 1), &line, provider))
                    {
                        return Ok(());
                    }
                }
            }
            Input::Lines(path) => {
                let file = std::fs::File::open(path).map_err(|source| ClientError::File {
                    path: path.clone(),
                    source,
                })?;
                for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                    let line = line.map_err(|source| ClientError::File {
                        path: path.clone(),
                        source,
                    })?;
                    let origin = format!("{}:{}", path.display(), n + 1);
                    if !line.trim().is_empty() && !send(line_item(&origin, &line, provider)) {
                        return Ok(());
                    }
                }
            }
            Input::Json(path) | Input::Feed(path) => {
                let bytes = std::fs::read(path).map_err(|source| ClientError::File {
                    path: path.clone(),
                    source,
                })?;
                let origin = path.display().to_string();
                match formats::parse_document(&bytes, provider) {
                    Ok(items) => {
                        let single = items.len() == 1 && matches!(input, Input::Json(_));
                        for item in items {
                            let origin = if single {
                                origin.clone()
                            } else {
                                format!("{origin} item {}", item.id)
                            };
                            if !send(to_item(&origin, item)) {
                                return Ok(());
                            }
                        }
                    }
                    Err(error) => {
                        if !send(Err((origin, error.to_string()))) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// One line of JSON Lines: a press release in the proto3 JSON mapping or a
/// ninjs object.
fn line_item(origin: &str, text: &str, provider: Option<&str>) -> Result<Item, (String, String)> {
    let (item, _) = formats::parse_json_item(text, provider)
        .map_err(|e| (origin.to_string(), e.to_string()))?;
    to_item(origin, item)
}

/// An item to send, or why it cannot be sent; notes go to stderr. A record
/// exported from a server carries its name, which becomes the request id:
/// importing the same export twice creates nothing new.
fn to_item(origin: &str, item: FeedItem) -> Result<Item, (String, String)> {
    for note in &item.notes {
        eprintln!("{origin}: note: {note}");
    }
    let release = item.release.map_err(|why| (origin.to_string(), why))?;
    let request_id = release.name.clone();
    Ok(Item {
        origin: origin.to_string(),
        request: ImportPressReleasesRequest {
            press_release: Some(release),
            request_id,
        },
    })
}

/// A progress bar on a terminal, a line every few seconds otherwise.
#[derive(Clone)]
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    plain: Arc<Mutex<(u64, Instant)>>,
    total: Option<u64>,
    started: Instant,
}

impl Progress {
    pub(super) fn new(total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} items, {per_sec}, ETA {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            plain: Arc::new(Mutex::new((0, Instant::now()))),
            total,
            started: Instant::now(),
        }
    }

    pub(super) fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let mut plain = self.plain.lock().unwrap_or_else(PoisonError::into_inner);
        plain.0 += 1;
        if plain.1.elapsed() >= Duration::from_secs(5) {
            plain.1 = Instant::now();
            let rate = plain.0 as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            match self.total {
                Some(total) => eprintln!("{} of {total} items ({rate:.0}/s)", plain.0),
                None => eprintln!("{} items ({rate:.0}/s)", plain.0),
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

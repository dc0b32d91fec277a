//! `pressroom export`: every press release (or a filtered set) as JSON Lines
//! in the proto3 JSON mapping (or, with `--format ninjs`, as IPTC ninjs 3.0
//! objects, one per line), newest first, with a progress bar on stderr.
//! `import` reads the file back; each record's name becomes its request id,
//! so importing an export twice creates nothing new.

use std::{io::Write, path::PathBuf};

use super::{ClientArgs, ClientError, connect, filter::FilterArgs, import::Progress};
use crate::formats::ninjs;
use crate::proto::v1::{GetPressReleaseStatsRequest, ListPressReleasesRequest};

/// `pressroom export`
#[derive(Clone, Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Also embargoed releases (publisher key).
    #[arg(long)]
    include_embargoed: bool,
    /// Write here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// `jsonl`: the proto3 JSON mapping, one press release per line;
    /// `ninjs`: IPTC ninjs 3.0, one object per line. `import` reads both.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    format: ExportFormat,
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines in the proto3 JSON mapping: everything, as stored.
    Jsonl,
    /// ninjs 3.0 objects, one per line: what news systems read.
    Ninjs,
}

pub(super) async fn export(args: ExportArgs) -> Result<(), ClientError> {
    let mut client = connect(&args.client).await?;
    let filter = args.filter.to_filter();
    let total = client
        .get_press_release_stats(GetPressReleaseStatsRequest {
            filter: filter.clone(),
            ..Default::default()
        })
        .await
        .ok()
        .map(|stats| stats.into_inner().total as u64);
    let progress = Progress::new(total);
    let file_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| ClientError::File { path, source }
    };
    let stdout = PathBuf::from("(stdout)");
    let target = args.output.as_ref().unwrap_or(&stdout);
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(file_error(path))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut page_token = String::new();
    let mut written = 0u64;
    loop {
        let page = client
            .list_press_releases(ListPressReleasesRequest {
                filter: filter.clone(),
                page_size: 500,
                page_token,
                include_embargoed: args.include_embargoed,
            })
            .await?
            .into_inner();
        for release in &page.press_releases {
            let line = match args.format {
                ExportFormat::Jsonl => serde_json::to_string(release),
                ExportFormat::Ninjs => serde_json::to_string(&ninjs::to_ninjs(release)),
            }
            .map_err(|e| ClientError::Other(Box::new(e)))?;
            writeln!(out, "{line}").map_err(file_error(target))?;
            written += 1;
            progress.advance();
        }
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    out.flush().map_err(file_error(target))?;
    progress.finish();
    eprintln!("{written} press releases exported");
    Ok(())
}

//! `pressroom watch`: follows the feed, printing each event as it arrives.
//! With `--cursor-file` the last cursor received is saved after every
//! message (written beside and renamed into place), and a re-run resumes
//! from it: nothing missed, nothing repeated. SIGINT and SIGTERM end the
//! run between two messages, never between printing one and saving its
//! cursor; only a SIGKILL in that window can print one event twice.

use std::path::{Path, PathBuf};

use tokio_stream::StreamExt as _;

use super::{
    ClientArgs, ClientError, connect,
    filter::{FacetArgs, StartArgs, StartAt},
    output::{self, Format, OutputArgs},
};
use crate::proto::v1::{
    EventType, PressReleaseEvent, StartPosition, WatchPressReleasesRequest,
    watch_press_releases_request::Start, watch_press_releases_response::Kind,
};

/// `pressroom watch`
#[derive(Clone, Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FacetArgs,
    /// Only releases matching this search query, e.g. `acquisition OR
    /// merger -rumour issuer:acme` (the language of `pressroom search`).
    #[arg(long)]
    query: Option<String>,
    /// With --query: show where each release matched (snippets with the
    /// query's words marked).
    #[arg(long, requires = "query")]
    highlight: bool,
    #[command(flatten)]
    start: StartArgs,
    /// Save the last cursor here, and resume from it when it exists.
    #[arg(long)]
    cursor_file: Option<PathBuf>,
    /// Stop once history has been replayed (the stream has caught up).
    #[arg(long)]
    until_caught_up: bool,
}

pub(super) async fn watch(args: WatchArgs) -> Result<(), ClientError> {
    // From here on SIGINT and SIGTERM end the run between two messages.
    let stop = crate::shutdown::signal();
    let saved = match &args.cursor_file {
        Some(path) => read_cursor(path)?,
        None => None,
    };
    let start = match (saved, args.start.start()) {
        (Some(cursor), _) => Start::AfterCursor(cursor),
        (None, StartAt::AfterCursor(cursor)) => Start::AfterCursor(cursor),
        (None, StartAt::Time(time)) => Start::StartTime(time),
        (None, StartAt::Beginning) => Start::Position(StartPosition::Beginning as i32),
        (None, StartAt::Now) => Start::Position(StartPosition::Now as i32),
    };
    let mut client = connect(&args.client).await?;
    let mut stream = client
        .watch_press_releases(WatchPressReleasesRequest {
            filter: args.start.to_filter(&args.filter),
            start: Some(start),
            query: args.query.clone().unwrap_or_default(),
            highlight: args.highlight,
        })
        .await?
        .into_inner();
    let format = match args.output.resolve(true) {
        Format::Json => Format::Jsonl,
        other => other,
    };
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            () = &mut stop => return Ok(()),
        };
        let Some(message) = message else {
            return Err(ClientError::Usage(
                "the server ended the stream; run again to resume".into(),
            ));
        };
        let cursor = match message?.kind {
            Some(Kind::Event(event)) => {
                print_event(&event, format)?;
                event.cursor
            }
            Some(Kind::Progress(progress)) => {
                if progress.caught_up && args.until_caught_up {
                    save_cursor(args.cursor_file.as_deref(), &progress.cursor)?;
                    return Ok(());
                }
                progress.cursor
            }
            None => continue,
        };
        save_cursor(args.cursor_file.as_deref(), &cursor)?;
    }
}

pub(super) fn print_event(event: &PressReleaseEvent, format: Format) -> Result<(), ClientError> {
    if format == Format::Ninjs {
        // The release as ninjs: a withdrawal is a `canceled` tombstone.
        let release = event.press_release.clone().unwrap_or_default();
        return output::json(&crate::formats::ninjs::to_ninjs(&release), Format::Jsonl);
    }
    if format != Format::Table {
        return output::json(event, format);
    }
    let release = event.press_release.clone().unwrap_or_default();
    let kind = match event.r#type() {
        EventType::Created => "CREATED",
        EventType::Updated => "UPDATED",
        EventType::Published => "PUBLISHED",
        EventType::Withdrawn => "WITHDRAWN",
        EventType::Unmatched => "UNMATCHED",
        EventType::Unspecified => "?",
    };
    output::line(&format!(
        "{}  {kind:<9}  {}  {}",
        output::time(event.commit_time),
        release.name,
        crate::text::cut(&release.headline, 80)
    ))?;
    // With a query: where it matched, the body's snippet first.
    let snippet = event
        .highlights
        .iter()
        .find(|h| h.field == "body")
        .or(event.highlights.first());
    match snippet {
        Some(highlight) => output::line(&format!(
            "    {}",
            crate::text::cut(
                &highlight
                    .snippet
                    .replace("<mark>", "[")
                    .replace("</mark>", "]"),
                120
            )
        )),
        None => Ok(()),
    }
}

fn read_cursor(path: &Path) -> Result<Option<String>, ClientError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ClientError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Saves the cursor: written beside the file, then renamed over it.
fn save_cursor(path: Option<&Path>, cursor: &str) -> Result<(), ClientError> {
    let Some(path) = path else { return Ok(()) };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, cursor)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|source| ClientError::File {
            path: path.to_path_buf(),
            source,
        })
}

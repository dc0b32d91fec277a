//! How the client prints: a table when stdout is a terminal, else JSON (one
//! document) or JSON Lines (one record per line), in the proto3 JSON mapping
//! so that what `export` writes, `import` reads back unchanged. `-o`
//! chooses.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use super::ClientError;
use crate::{formats::ninjs, proto::v1::PressRelease, text::cut};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// IPTC ninjs 3.0: one object for one press release, one per line for
    /// several.
    Ninjs,
}

/// The `-o` flag.
#[derive(Clone, Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format; a table on a terminal, else JSON (JSON Lines for lists).
    #[arg(short = 'o', long = "output", value_enum)]
    pub format: Option<Format>,
}

impl OutputArgs {
    /// The format to use for one record (`many = false`) or a list.
    pub fn resolve(&self, many: bool) -> Format {
        self.format.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else if many {
            Format::Jsonl
        } else {
            Format::Json
        })
    }
}

/// Refuses `-o ninjs` for what is not a press release.
pub fn not_ninjs(format: Format, what: &str) -> Result<(), ClientError> {
    if format == Format::Ninjs {
        return Err(ClientError::Usage(format!(
            "-o ninjs prints press releases; {what} can be printed as table, json or jsonl"
        )));
    }
    Ok(())
}

/// Writes one value as JSON (pretty) or JSON Lines.
pub fn json(value: &impl Serialize, format: Format) -> Result<(), ClientError> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(value),
        _ => serde_json::to_string(value),
    }
    .map_err(|e| ClientError::Other(Box::new(e)))?;
    line(&text)
}

/// Writes a line to stdout, flushed.
pub fn line(text: &str) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`| head`): stop quietly, as other tools do.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(source) => Err(ClientError::File {
            path: "(stdout)".into(),
            source,
        }),
    }
}

/// A table with the given header.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// A timestamp as RFC 3339 (empty when unset).
pub fn time(time: Option<crate::proto::Timestamp>) -> String {
    time.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A short state name.
pub fn state(release: &PressRelease) -> &'static str {
    use crate::proto::v1::press_release::State;
    match release.state() {
        State::Published => "published",
        State::Embargoed => "embargoed",
        State::Withdrawn => "withdrawn",
        State::Unspecified => "",
    }
}

/// Prints one press release.
pub fn release(release: &PressRelease, format: Format) -> Result<(), ClientError> {
    if format == Format::Ninjs {
        return json(&ninjs::to_ninjs(release), Format::Json);
    }
    if format != Format::Table {
        return json(release, format);
    }
    let mut table = table(&["field", "value"]);
    let issuer = release
        .issuer
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let country = release
        .dateline
        .as_ref()
        .map(|d| d.country_code.clone())
        .unwrap_or_default();
    let rows: Vec<(&str, String)> = vec![
        ("name", release.name.clone()),
        ("state", state(release).to_string()),
        ("headline", release.headline.clone()),
        ("issuer", issuer),
        ("country", country),
        ("language", release.language.clone()),
        ("channels", release.channels.join(", ")),
        ("publish time", time(release.publish_time)),
        ("embargo time", time(release.embargo_time)),
        ("revision", release.revision.to_string()),
        ("etag", release.etag.clone()),
        ("body", cut(&release.body, 400)),
    ];
    for (field, value) in rows {
        if !value.is_empty() {
            table.add_row(vec![field.to_string(), value]);
        }
    }
    line(&table.to_string())
}

/// Prints press releases: a table, or one JSON document, or JSON Lines.
pub fn releases(releases: &[PressRelease], format: Format) -> Result<(), ClientError> {
    match format {
        Format::Jsonl => releases.iter().try_for_each(|r| json(r, Format::Jsonl)),
        Format::Ninjs => releases
            .iter()
            .try_for_each(|r| json(&ninjs::to_ninjs(r), Format::Jsonl)),
        Format::Json => json(&releases, Format::Json),
        Format::Table => {
            let mut table = table(&["published", "state", "name", "headline", "channels"]);
            for release in releases {
                table.add_row(vec![
                    time(release.publish_time),
                    state(release).to_string(),
                    release.name.clone(),
                    cut(&release.headline, 70),
                    cut(&release.channels.join(", "), 30),
                ]);
            }
            line(&table.to_string())
        }
    }
}

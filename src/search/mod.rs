//! Full-text search: a tantivy index in its own folder under the data dir,
//! kept as one more reader of the change log.
//!
//! The [`indexer`] follows the log from its own cursor, which it commits in
//! the index's commit payload together with the documents, so the index
//! never drifts from sled; commits are batched (at most about two a second).
//! On start-up it catches up from that cursor. An index that is missing,
//! damaged, of another schema version or of another store is rebuilt from
//! the store in the background; until then [`SearchIndex::search`] answers
//! [`SearchError::NotReady`]. Only published releases are indexed; ranking
//! is BM25 with the headline weighted above the body.

mod indexer;
pub mod query;
mod schema;
pub mod standing;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tantivy::{
    Index, IndexReader, ReloadPolicy, TantivyDocument,
    collector::{Count, DocSetCollector, TopDocs},
    query::{
        BooleanQuery, BoostQuery, Occur, PhraseQuery, Query as TantivyQuery, TermQuery,
        TermSetQuery,
    },
    schema::{IndexRecordOption, Value},
    snippet::{Snippet, SnippetGenerator},
};
use uuid::Uuid;

pub use indexer::spawn;
use query::{Atom, Query, QueryError, TextField};
use schema::{Fields, SCHEMA_VERSION, plain_body};

use crate::{
    proto::v1::PressRelease,
    store::{ListQuery, StoreError},
};

/// What went wrong in the search layer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index is being rebuilt.
    #[error(
        "the search index is being rebuilt ({indexed} of {target} changes read); try again shortly"
    )]
    NotReady {
        /// Change-log position reached.
        indexed: u64,
        /// Position at which it will be ready.
        target: u64,
    },
    /// The query cannot be run.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
    /// tantivy failed.
    #[error("the search index failed")]
    Index(#[from] tantivy::TantivyError),
    /// The index folder could not be prepared.
    #[error("cannot prepare the search index folder {path}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed while indexing.
    #[error("reading the store for the search index failed")]
    Store(#[from] StoreError),
}

/// Whether search can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Answering.
    Ready,
    /// Being rebuilt from the store.
    Rebuilding {
        /// Change-log position reached.
        indexed: u64,
        /// Position at which it will be ready.
        target: u64,
    },
}

/// The order of search results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Most relevant first (BM25).
    #[default]
    Relevance,
    /// Newest `publish_time` first; the scores are then 0.
    Newest,
}

/// A handle to the search index. Cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    shared: Arc<Shared>,
}

struct Shared {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    status: Mutex<Status>,
    /// The change-log position the committed index reflects.
    committed: AtomicU64,
}

/// One page of search results.
pub struct Hits {
    /// How many documents match in all.
    pub total: usize,
    /// The page: score and release id, best first.
    pub hits: Vec<(f32, Uuid)>,
    /// Marks the query's words in a release's headline and body.
    pub highlighter: Highlighter,
}

/// Makes highlights for the releases of a result page.
pub struct Highlighter {
    headline: SnippetGenerator,
    body: SnippetGenerator,
}

impl Highlighter {
    /// Snippets of the headline and body with the matched words in
    /// `<mark>`, the rest HTML-escaped; fields without a match are left out.
    /// The body's snippet is looked for in its first few kilobytes, and only
    /// if it is not there in the rest (tokenising whole bodies for every hit
    /// is most of a query's cost).
    pub fn highlights(&self, release: &PressRelease) -> Vec<(&'static str, String)> {
        let body = plain_body(release);
        let mut body_snippet = self.body.snippet(head(&body, HIGHLIGHT_WINDOW));
        if body_snippet.highlighted().is_empty() && body.len() > HIGHLIGHT_WINDOW {
            body_snippet = self.body.snippet(&body);
        }
        let mut out = Vec::new();
        for (name, snippet) in [
            ("headline", self.headline.snippet(&release.headline)),
            ("body", body_snippet),
        ] {
            if !snippet.highlighted().is_empty() {
                out.push((name, mark(&snippet)));
            }
        }
        out
    }
}

impl SearchIndex {
    /// Opens the index in `dir` if it is usable for this store, else
    /// creates an empty one to rebuild. Returns the index and the log
    /// position its indexer starts after.
    pub fn open(dir: &Path, store_id: Uuid, durable_head: u64) -> Result<(Self, u64), SearchError> {
        let fields = Fields::new();
        let (index, start, status) = match open_existing(dir, &fields, store_id, durable_head) {
            Ok(index_and_position) => {
                let (index, position) = index_and_position;
                tracing::info!(position, "search index opened; catching up");
                (index, position, Status::Ready)
            }
            Err(reason) => {
                tracing::warn!(%reason, folder = %dir.display(), "rebuilding the search index from the store");
                (
                    create_empty(dir, &fields)?,
                    0,
                    Status::Rebuilding {
                        indexed: 0,
                        target: durable_head,
                    },
                )
            }
        };
        let status = match status {
            Status::Rebuilding { target: 0, .. } => Status::Ready,
            other => other,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let shared = Arc::new(Shared {
            index,
            reader,
            fields,
            status: Mutex::new(status),
            committed: AtomicU64::new(start),
        });
        Ok((Self { shared }, start))
    }

    /// Whether search can answer.
    pub fn status(&self) -> Status {
        *self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The change-log position the searchable index reflects.
    pub fn position(&self) -> u64 {
        self.shared.committed.load(Ordering::Acquire)
    }

    /// Which of `ids` match `query` as the index holds them, and the
    /// change-log position the answer holds for: for a release whose latest
    /// change is at or before it, the answer is about that change's version
    /// (the index has taken in every change up to there, and none after
    /// that concerns the release). Used while the index is rebuilt too: it
    /// is then exact up to the position reached.
    pub fn matching_among(
        &self,
        query: &Query,
        ids: &[Uuid],
    ) -> Result<(u64, HashSet<Uuid>), SearchError> {
        // The position first: the searcher is then at least as new.
        let position = self.position();
        let searcher = self.shared.reader.searcher();
        let fields = &self.shared.fields;
        let among = TermSetQuery::new(ids.iter().map(|id| fields.id_term(id)));
        let full = BooleanQuery::new(vec![
            (Occur::Must, compile(fields, query)?),
            (Occur::Must, Box::new(among)),
        ]);
        let mut matching = HashSet::new();
        for address in searcher.search(&full, &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc
                .get_first(fields.id)
                .and_then(|value| value.as_str())
                .and_then(|text| Uuid::parse_str(text).ok())
            {
                matching.insert(id);
            }
        }
        Ok((position, matching))
    }

    /// Runs a query narrowed by a `List` filter; returns one page in
    /// `order`.
    pub fn search(
        &self,
        query: &Query,
        filter: &ListQuery,
        order: Order,
        offset: usize,
        limit: usize,
    ) -> Result<Hits, SearchError> {
        if let Status::Rebuilding { indexed, target } = self.status() {
            return Err(SearchError::NotReady { indexed, target });
        }
        let fields = &self.shared.fields;
        let text = compile(fields, query)?;
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> =
            vec![(Occur::Must, text.box_clone())];
        clauses.extend(fields.filter(filter));
        let full = BooleanQuery::new(clauses);
        let searcher = self.shared.reader.searcher();
        let top_docs = TopDocs::with_limit(limit.max(1)).and_offset(offset);
        let (top, total) = match order {
            Order::Relevance => searcher.search(&full, &(top_docs.order_by_score(), Count))?,
            Order::Newest => {
                let newest =
                    top_docs.order_by_fast_field::<i64>("publish_time", tantivy::Order::Desc);
                let (top, total) = searcher.search(&full, &(newest, Count))?;
                let top = top.into_iter().map(|(_, address)| (0.0, address)).collect();
                (top, total)
            }
        };
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let id = doc
                .get_first(fields.id)
                .and_then(|value| value.as_str())
                .and_then(|text| Uuid::parse_str(text).ok());
            if let Some(id) = id {
                hits.push((score, id));
            }
        }
        let mut highlighter = Highlighter {
            headline: SnippetGenerator::create(
                &searcher,
                &*text,
                fields.text(TextField::Headline),
            )?,
            body: SnippetGenerator::create(&searcher, &*text, fields.text(TextField::Body))?,
        };
        highlighter
            .headline
            .set_max_num_chars(HEADLINE_SNIPPET_CHARS);
        highlighter.body.set_max_num_chars(BODY_SNIPPET_CHARS);
        Ok(Hits {
            total,
            hits,
            highlighter,
        })
    }
}

/// Turns a parsed query into a tantivy query over the text fields.
pub(crate) fn compile(
    fields: &Fields,
    query: &Query,
) -> Result<Box<dyn TantivyQuery>, SearchError> {
    let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
    for group in &query.required {
        let alternatives = group
            .iter()
            .map(|atom| compile_atom(fields, atom))
            .collect::<Result<Vec<_>, _>>()?;
        clauses.push((
            Occur::Must,
            Box::new(BooleanQuery::new(
                alternatives
                    .into_iter()
                    .map(|q| (Occur::Should, q))
                    .collect(),
            )),
        ));
    }
    for atom in &query.excluded {
        clauses.push((Occur::MustNot, compile_atom(fields, atom)?));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// One atom: its words in the field it names, or in every text field with
/// the headline weighted highest.
fn compile_atom(fields: &Fields, atom: &Atom) -> Result<Box<dyn TantivyQuery>, SearchError> {
    let words = atom_words(atom)?;
    let per_field: Vec<(Occur, Box<dyn TantivyQuery>)> = atom_fields(atom)
        .iter()
        .map(|&field| {
            let tantivy_field = fields.text(field);
            let terms: Vec<tantivy::Term> = words
                .iter()
                .map(|word| tantivy::Term::from_field_text(tantivy_field, word))
                .collect();
            // One word is a term; several (a phrase, or a word the analyzer
            // splits, like `e-mail`) must appear in order.
            let query: Box<dyn TantivyQuery> = match terms.as_slice() {
                [term] => Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                _ => Box::new(PhraseQuery::new(terms)),
            };
            (
                Occur::Should,
                Box::new(BoostQuery::new(query, boost(field))) as Box<dyn TantivyQuery>,
            )
        })
        .collect();
    Ok(Box::new(BooleanQuery::new(per_field)))
}

/// The fields an atom is looked for in: the one it names, else all.
pub(crate) fn atom_fields(atom: &Atom) -> &'static [TextField] {
    match atom.field {
        Some(TextField::Headline) => &[TextField::Headline],
        Some(TextField::Subheadline) => &[TextField::Subheadline],
        Some(TextField::Summary) => &[TextField::Summary],
        Some(TextField::Body) => &[TextField::Body],
        Some(TextField::Issuer) => &[TextField::Issuer],
        Some(TextField::Keywords) => &[TextField::Keywords],
        None => &TextField::ALL,
    }
}

/// The words of an atom as the analyzer makes them; an atom without any is
/// an error, at its position.
pub(crate) fn atom_words(atom: &Atom) -> Result<Vec<String>, QueryError> {
    let mut analyzer = schema::analyzer();
    let mut stream = analyzer.token_stream(&atom.text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    if words.is_empty() {
        return Err(QueryError {
            position: atom.position,
            message: format!("{} has no searchable words", crate::text::shown(&atom.text)),
        });
    }
    Ok(words)
}

/// Longest headline snippet, in characters.
const HEADLINE_SNIPPET_CHARS: usize = 300;
/// Longest body snippet, in characters.
const BODY_SNIPPET_CHARS: usize = 200;
/// Bytes of a body searched first for its highlight.
const HIGHLIGHT_WINDOW: usize = 2_048;

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How much a match in a field counts.
fn boost(field: TextField) -> f32 {
    match field {
        TextField::Headline => 3.0,
        TextField::Subheadline | TextField::Issuer => 2.0,
        TextField::Summary | TextField::Keywords => 1.5,
        TextField::Body => 1.0,
    }
}

/// A snippet with its matches in `<mark>`, the rest HTML-escaped.
fn mark(snippet: &Snippet) -> String {
    let fragment = snippet.fragment();
    let mut out = String::with_capacity(fragment.len() + 16);
    let mut at = 0;
    for range in snippet.highlighted() {
        if range.start < at || range.end > fragment.len() {
            continue;
        }
        out.push_str(&html_escape::encode_text(&fragment[at..range.start]));
        out.push_str("<mark>");
        out.push_str(&html_escape::encode_text(&fragment[range.clone()]));
        out.push_str("</mark>");
        at = range.end;
    }
    out.push_str(&html_escape::encode_text(&fragment[at..]));
    out
}

/// The commit payload: what the index reflects.
fn payload(store_id: Uuid, position: u64) -> String {
    format!("pressroom-search v{SCHEMA_VERSION} store {store_id} position {position}")
}

/// Opens an existing index if it is this schema's, this store's, and not
/// ahead of the store; else says why not.
fn open_existing(
    dir: &Path,
    fields: &Fields,
    store_id: Uuid,
    durable_head: u64,
) -> Result<(Index, u64), String> {
    if !dir.exists() {
        return Err("there is no index yet".into());
    }
    let index = Index::open_in_dir(dir).map_err(|e| format!("the index cannot be opened: {e}"))?;
    index
        .tokenizers()
        .register(schema::ANALYZER, schema::analyzer());
    if index.schema() != fields.schema {
        return Err("the index has another schema".into());
    }
    let metas = index
        .load_metas()
        .map_err(|e| format!("the index metadata cannot be read: {e}"))?;
    let payload_text = metas.payload.unwrap_or_default();
    let position = payload_text
        .strip_prefix(&format!(
            "pressroom-search v{SCHEMA_VERSION} store {store_id} position "
        ))
        .and_then(|rest| rest.parse::<u64>().ok())
        .ok_or_else(|| format!("the index is of another version or store ({payload_text:?})"))?;
    if position > durable_head {
        return Err(format!(
            "the index is ahead of the store ({position} > {durable_head}); was the store restored?"
        ));
    }
    // A damaged segment shows when the index is read.
    index
        .reader()
        .map_err(|e| format!("the index cannot be read: {e}"))?;
    Ok((index, position))
}

fn create_empty(dir: &Path, fields: &Fields) -> Result<Index, SearchError> {
    let folder = |source| SearchError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(folder(e)),
    }
    std::fs::create_dir_all(dir).map_err(folder)?;
    let index = Index::create_in_dir(dir, fields.schema.clone())?;
    index
        .tokenizers()
        .register(schema::ANALYZER, schema::analyzer());
    Ok(index)
}

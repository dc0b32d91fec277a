//! Standing queries: which of many search queries a press release matches,
//! decided from the release's own text, without an index, with exactly
//! search's semantics.
//!
//! A query is analysed once, with the index's analyzer and search's own
//! rules for atoms (the same words, stems and errors as search). A release
//! is analysed once for a whole [`QuerySet`] (by the same analyzer, with
//! the stems of words already seen remembered): only the words some query of
//! the set looks for are kept, with their field and position counted as the
//! index counts them (values of one field follow each other with a gap, so
//! a phrase never spans two keywords), so a phrase matches exactly when the
//! index's phrase query would. Each query is anchored on the words of one
//! of its required groups; a release is checked in full only against the
//! queries whose anchor words it holds.
//!
//! [`BatchIndex`] is the other way to do it: an in-memory tantivy index of
//! a batch of releases, each query run on it. It is the reference the tests
//! compare with and the benchmark measures the matcher against.

use std::{
    cell::RefCell,
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::Arc,
};

use tantivy::{
    Index, IndexWriter, TantivyDocument, collector::DocSetCollector, query::Query as TantivyQuery,
    schema::Value, snippet::SnippetGenerator, tokenizer::TextAnalyzer,
};
use uuid::Uuid;

use super::{
    Highlighter, SearchError, atom_fields, atom_words, compile,
    query::{Atom, Query, QueryError, TextField},
    schema::{self, Fields, text_values},
};
use crate::proto::v1::PressRelease;

/// A set of text fields, one bit per field in [`TextField::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FieldSet(u8);

impl FieldSet {
    fn of(fields: &[TextField]) -> Self {
        Self(fields.iter().fold(0, |bits, f| bits | 1 << slot(*f)))
    }

    fn has(self, slot: u8) -> bool {
        self.0 & (1 << slot) != 0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A field's place in [`TextField::ALL`].
fn slot(field: TextField) -> u8 {
    TextField::ALL
        .iter()
        .position(|f| *f == field)
        .map_or(0, |i| i as u8)
}

/// One atom, analysed: its words (in order, as one phrase when several),
/// looked for in these fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Words {
    fields: FieldSet,
    words: Vec<String>,
}

impl Words {
    fn of(atom: &Atom) -> Result<Self, QueryError> {
        Ok(Self {
            fields: FieldSet::of(atom_fields(atom)),
            words: atom_words(atom)?,
        })
    }
}

/// A search query analysed for matching releases one by one. Two queries
/// that mean the same (the same groups and exclusions, in any order, with
/// words that analyse alike) are equal, so equal queries can be grouped.
pub struct StandingQuery {
    /// Groups of alternatives; each must match. Sorted, without repeats.
    required: Vec<Vec<Words>>,
    /// Atoms none of which may match. Sorted, without repeats.
    excluded: Vec<Words>,
    /// This query alone, compiled.
    alone: QuerySet,
}

impl std::fmt::Debug for StandingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandingQuery")
            .field("required", &self.required)
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

impl PartialEq for StandingQuery {
    fn eq(&self, other: &Self) -> bool {
        self.required == other.required && self.excluded == other.excluded
    }
}

impl Eq for StandingQuery {}

impl Hash for StandingQuery {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.required.hash(state);
        self.excluded.hash(state);
    }
}

impl StandingQuery {
    /// Analyses a parsed query. Fails where search would: on an atom
    /// without searchable words, at its position.
    pub fn new(query: &Query) -> Result<Self, QueryError> {
        let mut required = query
            .required
            .iter()
            .map(|group| {
                let mut alternatives =
                    group.iter().map(Words::of).collect::<Result<Vec<_>, _>>()?;
                alternatives.sort();
                alternatives.dedup();
                Ok(alternatives)
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        required.sort();
        required.dedup();
        let mut excluded = query
            .excluded
            .iter()
            .map(Words::of)
            .collect::<Result<Vec<_>, _>>()?;
        excluded.sort();
        excluded.dedup();
        let alone = QuerySet::compile([(0, (&required, &excluded))]);
        Ok(Self {
            required,
            excluded,
            alone,
        })
    }

    /// Whether a release matches this query, as search would find it (the
    /// release's state and any filter are the caller's to check).
    pub fn matches(&self, release: &PressRelease) -> bool {
        !self.alone.matching(release).is_empty()
    }

    /// Highlights of this query's words, as search makes them (every word
    /// weighs the same: a single release has no corpus to weigh them by).
    pub fn highlighter(&self) -> Highlighter {
        let generator = |field: TextField, max_chars: usize| {
            let terms = self
                .required
                .iter()
                .flatten()
                .filter(|atom| atom.fields.has(slot(field)))
                .flat_map(|atom| atom.words.iter().map(|word| (word.clone(), 1.0)))
                .collect();
            SnippetGenerator::new(
                terms,
                schema::remembering_analyzer(),
                Fields::new().text(field),
                max_chars,
            )
        };
        Highlighter {
            headline: generator(TextField::Headline, super::HEADLINE_SNIPPET_CHARS),
            body: generator(TextField::Body, super::BODY_SNIPPET_CHARS),
        }
    }

    /// How many bytes this query holds (for reporting memory per query).
    pub fn heap_size(&self) -> usize {
        let words = |w: &Words| {
            size_of::<Words>() + w.words.iter().map(|s| s.capacity() + 24).sum::<usize>()
        };
        self.required
            .iter()
            .map(|g| 24 + g.iter().map(words).sum::<usize>())
            .sum::<usize>()
            + self.excluded.iter().map(words).sum::<usize>()
            + self.alone.heap_size()
    }
}

/// An atom compiled against a set's vocabulary.
struct CompiledAtom {
    fields: FieldSet,
    /// Word ids, in phrase order.
    words: Vec<u32>,
}

/// A query compiled against a set's vocabulary.
struct CompiledQuery {
    id: u64,
    required: Vec<Vec<CompiledAtom>>,
    excluded: Vec<CompiledAtom>,
}

/// Many standing queries, compiled to be matched together: a release is
/// analysed once for all of them.
pub struct QuerySet {
    /// Every word some query looks for, and its id.
    vocabulary: HashMap<String, u32>,
    queries: Vec<CompiledQuery>,
    /// Per word id, the queries anchored on it.
    anchors: Vec<Vec<u32>>,
    /// Per word id, its length in bytes.
    word_len: Vec<usize>,
    /// The fields any query looks in (the others are not analysed).
    fields: FieldSet,
}

/// Where the words a set looks for stand in one release: `(word, field
/// slot, position)`, sorted.
type Occurrences = Vec<(u32, u8, u32)>;

thread_local! {
    /// The analyzer of this thread (analysing needs it mutably).
    static ANALYZER: RefCell<TextAnalyzer> = RefCell::new(schema::remembering_analyzer());
}

impl QuerySet {
    /// Compiles queries, each with the id that [`QuerySet::matching`]
    /// reports it by.
    pub fn new(queries: impl IntoIterator<Item = (u64, Arc<StandingQuery>)>) -> Self {
        let queries: Vec<(u64, Arc<StandingQuery>)> = queries.into_iter().collect();
        Self::compile(
            queries
                .iter()
                .map(|(id, query)| (*id, (&query.required, &query.excluded))),
        )
    }

    /// Compiles queries given by their groups and exclusions.
    fn compile<'a>(
        queries: impl IntoIterator<Item = (u64, (&'a Vec<Vec<Words>>, &'a Vec<Words>))>,
    ) -> Self {
        let mut set = QuerySet {
            vocabulary: HashMap::new(),
            queries: Vec::new(),
            anchors: Vec::new(),
            word_len: Vec::new(),
            fields: FieldSet::default(),
        };
        for (id, (required_words, excluded_words)) in queries {
            let mut atom = |words: &Words| {
                set.fields = set.fields.union(words.fields);
                CompiledAtom {
                    fields: words.fields,
                    words: words.words.iter().map(|w| set.word_id(w)).collect(),
                }
            };
            let required: Vec<Vec<CompiledAtom>> = required_words
                .iter()
                .map(|group| group.iter().map(&mut atom).collect())
                .collect();
            let excluded = excluded_words.iter().map(&mut atom).collect();
            let index = set.queries.len() as u32;
            // Anchored on the group with the fewest alternatives (the
            // likeliest to rule a release out), by the longest word of each
            // alternative (long words are the rarer ones).
            if let Some(group) = required.iter().min_by_key(|group| group.len()) {
                for atom in group {
                    let longest = atom
                        .words
                        .iter()
                        .max_by_key(|&&word| set.word_len[word as usize]);
                    if let Some(&word) = longest {
                        set.anchors[word as usize].push(index);
                    }
                }
            }
            set.queries.push(CompiledQuery {
                id,
                required,
                excluded,
            });
        }
        for anchored in &mut set.anchors {
            anchored.dedup();
        }
        set
    }

    fn word_id(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.vocabulary.get(word) {
            return id;
        }
        let id = self.anchors.len() as u32;
        self.vocabulary.insert(word.to_string(), id);
        self.anchors.push(Vec::new());
        self.word_len.push(word.len());
        id
    }

    /// How many queries the set holds.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the set holds no query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The ids of the queries `release` matches, in the order given.
    pub fn matching(&self, release: &PressRelease) -> Vec<u64> {
        if self.queries.is_empty() {
            return Vec::new();
        }
        let occurrences = self.occurrences(release);
        let mut candidates: Vec<u32> = Vec::new();
        let mut previous = None;
        for &(word, _, _) in &occurrences {
            if previous != Some(word) {
                candidates.extend(&self.anchors[word as usize]);
                previous = Some(word);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| self.queries.get(i as usize))
            .filter(|query| holds(query, &occurrences))
            .map(|query| query.id)
            .collect()
    }

    /// Analyses the fields the set looks in, keeping the words it knows.
    /// Positions are counted as tantivy counts them when it indexes a
    /// document: each value of a field starts one past the end of the one
    /// before, and a token's position is the tokenizer's (dropped long
    /// words leave their gap).
    fn occurrences(&self, release: &PressRelease) -> Occurrences {
        let mut out = Vec::new();
        let mut ends = [0u32; TextField::ALL.len()];
        ANALYZER.with(|analyzer| {
            let mut analyzer = analyzer.borrow_mut();
            for (field, value) in text_values(release, |f| self.fields.has(slot(f))) {
                let slot = slot(field);
                let base = ends[slot as usize];
                let mut end = base;
                let mut stream = analyzer.token_stream(&value);
                while stream.advance() {
                    let token = stream.token();
                    let position = base + token.position as u32;
                    end = end.max(position + token.position_length as u32);
                    if let Some(&word) = self.vocabulary.get(token.text.as_str()) {
                        out.push((word, slot, position));
                    }
                }
                ends[slot as usize] = end + 1;
            }
        });
        out.sort_unstable();
        out
    }

    /// How many bytes the compiled set holds (for reporting memory per
    /// query).
    pub fn heap_size(&self) -> usize {
        let atom = |a: &CompiledAtom| size_of::<CompiledAtom>() + 4 * a.words.capacity();
        self.vocabulary
            .keys()
            .map(|k| k.capacity() + 48)
            .sum::<usize>()
            + self
                .queries
                .iter()
                .map(|q| {
                    size_of::<CompiledQuery>()
                        + q.required
                            .iter()
                            .map(|g| 24 + g.iter().map(atom).sum::<usize>())
                            .sum::<usize>()
                        + q.excluded.iter().map(atom).sum::<usize>()
                })
                .sum::<usize>()
            + self
                .anchors
                .iter()
                .map(|a| 24 + 4 * a.capacity())
                .sum::<usize>()
    }
}

/// Whether a query matches a release with these occurrences: every group
/// has an atom that holds, and no excluded atom does.
fn holds(query: &CompiledQuery, occurrences: &Occurrences) -> bool {
    query
        .required
        .iter()
        .all(|group| group.iter().any(|atom| atom_holds(atom, occurrences)))
        && !query
            .excluded
            .iter()
            .any(|atom| atom_holds(atom, occurrences))
}

/// Whether an atom's words stand in one of its fields, one after the other.
fn atom_holds(atom: &CompiledAtom, occurrences: &Occurrences) -> bool {
    let Some((&first, rest)) = atom.words.split_first() else {
        return false;
    };
    let from = occurrences.partition_point(|&(word, _, _)| word < first);
    occurrences[from..]
        .iter()
        .take_while(|&&(word, _, _)| word == first)
        .filter(|&&(_, field, _)| atom.fields.has(field))
        .any(|&(_, field, position)| {
            rest.iter().zip(1u32..).all(|(&word, offset)| {
                occurrences
                    .binary_search(&(word, field, position + offset))
                    .is_ok()
            })
        })
}

/// The other way to match: an in-memory tantivy index of a batch of
/// releases, with every query run on it. Exactly search's semantics by
/// construction (the same schema, analyzer and compiled queries).
pub struct BatchIndex {
    fields: Fields,
    queries: Vec<(u64, Box<dyn TantivyQuery>)>,
}

/// Memory tantivy's writer needs at least.
const BATCH_WRITER_HEAP: usize = 15_000_000;

impl BatchIndex {
    /// Compiles queries for tantivy, each with the id it is reported by.
    pub fn new<'a>(
        queries: impl IntoIterator<Item = (u64, &'a Query)>,
    ) -> Result<Self, SearchError> {
        let fields = Fields::new();
        let queries = queries
            .into_iter()
            .map(|(id, query)| Ok((id, compile(&fields, query)?)))
            .collect::<Result<Vec<_>, SearchError>>()?;
        Ok(Self { fields, queries })
    }

    /// For each release of the batch, the ids of the queries it matches.
    pub fn matching(&self, releases: &[PressRelease]) -> Result<Vec<Vec<u64>>, SearchError> {
        let index = Index::create_in_ram(self.fields.schema.clone());
        index
            .tokenizers()
            .register(schema::ANALYZER, schema::analyzer());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, BATCH_WRITER_HEAP)?;
        for (i, release) in releases.iter().enumerate() {
            writer.add_document(self.fields.document(&Uuid::from_u128(i as u128), release))?;
        }
        writer.commit()?;
        let searcher = index.reader()?.searcher();
        let mut out = vec![Vec::new(); releases.len()];
        for (id, query) in &self.queries {
            for address in searcher.search(&**query, &DocSetCollector)? {
                let doc: TantivyDocument = searcher.doc(address)?;
                let position = doc
                    .get_first(self.fields.id)
                    .and_then(|value| value.as_str())
                    .and_then(|text| Uuid::parse_str(text).ok())
                    .map(|uuid| uuid.as_u128() as usize);
                if let Some(matched) = position.and_then(|i| out.get_mut(i)) {
                    matched.push(*id);
                }
            }
        }
        for matched in &mut out {
            matched.sort_unstable();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        proto::v1::{Organization, press_release::BodyFormat},
        search::query::parse,
    };
    use proptest::prelude::*;

    /// Words with their inflections, a few that the analyzer splits or
    /// drops, and others that no query uses.
    const VOCABULARY: &[&str] = &[
        "acquire",
        "acquired",
        "acquires",
        "acquisition",
        "acquisitions",
        "merger",
        "mergers",
        "merge",
        "run",
        "runs",
        "running",
        "ran",
        "solar",
        "Solar",
        "SOLAR",
        "panel",
        "panels",
        "recall",
        "recalled",
        "e-mail",
        "don't",
        "café",
        "Café",
        "naïve",
        "the",
        "a",
        "of",
        "acme",
        "Acme",
        "globex",
        "2026",
        "Q3",
        "wind",
        "tidal",
        "supercalifragilisticexpialidociousandmorewords",
    ];
    const SEPARATORS: &[&str] = &[" ", " ", " ", ", ", ". ", " - ", "\n", "/", " & "];

    fn text(max_words: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop::sample::select(VOCABULARY),
                prop::sample::select(SEPARATORS),
            ),
            0..max_words,
        )
        .prop_map(|words| {
            words
                .into_iter()
                .map(|(word, separator)| format!("{word}{separator}"))
                .collect()
        })
    }

    fn release() -> impl Strategy<Value = PressRelease> {
        (
            text(8),
            text(4),
            text(6),
            text(30),
            any::<bool>(),
            prop::option::of(text(3)),
            prop::collection::vec(text(3), 0..4),
        )
            .prop_map(
                |(headline, subheadline, summary, body, html, issuer, keywords)| PressRelease {
                    headline,
                    subheadline,
                    summary,
                    body: if html {
                        format!("<p>{}</p><ul><li>{}</li></ul>", body, "acme &amp; solar")
                    } else {
                        body
                    },
                    body_format: if html {
                        BodyFormat::Html
                    } else {
                        BodyFormat::PlainText
                    } as i32,
                    issuer: issuer.map(|name| Organization {
                        name,
                        ..Default::default()
                    }),
                    keywords,
                    ..Default::default()
                },
            )
    }

    /// A query text: words and phrases, some in a field, some OR-ed, some
    /// excluded. Malformed ones are kept: both sides must refuse them.
    fn query_text() -> impl Strategy<Value = String> {
        let atom = (
            prop::sample::select(
                &[
                    "",
                    "",
                    "",
                    "headline:",
                    "body:",
                    "issuer:",
                    "keywords:",
                    "summary:",
                ][..],
            ),
            prop::collection::vec(prop::sample::select(VOCABULARY), 1..4),
            any::<bool>(),
        )
            .prop_map(|(field, words, quoted)| {
                if quoted || words.len() == 1 {
                    let joined = words.join(" ");
                    if quoted {
                        format!("{field}\"{joined}\"")
                    } else {
                        format!("{field}{joined}")
                    }
                } else {
                    format!("{field}{}", words[0])
                }
            });
        prop::collection::vec(
            (atom, prop::sample::select(&["", "", "", "OR ", "-"][..])),
            1..5,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(atom, how)| match how {
                    "-" => format!("-{atom} "),
                    "OR " => format!("{atom} OR "),
                    _ => format!("{atom} "),
                })
                .collect::<String>()
        })
    }

    /// The queries that parse, analysed both ways; the others must fail the
    /// same way on both sides.
    fn compiled(texts: &[String]) -> Vec<(u64, Query, Arc<StandingQuery>)> {
        let fields = Fields::new();
        let mut out = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let Ok(parsed) = parse(text) else { continue };
            let standing = StandingQuery::new(&parsed);
            let indexed = compile(&fields, &parsed);
            match (standing, indexed) {
                (Ok(standing), Ok(_)) => out.push((i as u64, parsed, Arc::new(standing))),
                (Err(a), Err(SearchError::Query(b))) => assert_eq!(a, b, "{text:?}"),
                (a, b) => panic!("{text:?}: standing {a:?}, index {:?}", b.err()),
            }
        }
        out
    }

    fn assert_same_matches(
        releases: &[PressRelease],
        queries: &[(u64, Query, Arc<StandingQuery>)],
    ) {
        let set = QuerySet::new(queries.iter().map(|(id, _, q)| (*id, Arc::clone(q))));
        let batch = BatchIndex::new(queries.iter().map(|(id, q, _)| (*id, q)));
        let expected = match batch.and_then(|b| b.matching(releases)) {
            Ok(expected) => expected,
            Err(e) => panic!("the in-memory index failed: {e}"),
        };
        for (release, expected) in releases.iter().zip(expected) {
            let mut got = set.matching(release);
            got.sort_unstable();
            assert_eq!(got, expected, "release {release:#?}\nqueries {queries:#?}");
            for (id, _, query) in queries {
                assert_eq!(
                    query.matches(release),
                    expected.contains(id),
                    "alone: {query:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_exactly_what_an_index_of_the_same_releases_finds(
            releases in prop::collection::vec(release(), 1..8),
            texts in prop::collection::vec(query_text(), 1..10),
        ) {
            assert_same_matches(&releases, &compiled(&texts));
        }
    }

    #[test]
    fn phrases_stem_and_do_not_span_two_values() {
        let release = PressRelease {
            headline: "Acme acquires Globex".into(),
            body: "<p>The acquisitions of <b>solar</b> panels</p>".into(),
            body_format: BodyFormat::Html as i32,
            keywords: vec!["tidal".into(), "wind".into()],
            ..Default::default()
        };
        let cases = [
            ("acquisition", true),
            ("\"acquired globex\"", true),
            ("headline:\"acme acquire\"", true),
            ("body:acme", false),
            ("\"solar panel\"", true),
            ("\"panel solar\"", false),
            ("keywords:\"tidal wind\"", false),
            ("keywords:wind -headline:acme", false),
            ("keywords:wind -body:acme", true),
            ("merger OR acme", true),
            ("merger OR recall", false),
        ];
        let texts: Vec<String> = cases.iter().map(|(q, _)| q.to_string()).collect();
        let queries = compiled(&texts);
        assert_eq!(queries.len(), cases.len());
        for ((_, _, query), (text, expected)) in queries.iter().zip(cases) {
            assert_eq!(query.matches(&release), expected, "{text}");
        }
        assert_same_matches(std::slice::from_ref(&release), &queries);
    }

    #[test]
    fn equal_queries_are_equal() -> Result<(), QueryError> {
        let a = StandingQuery::new(&parse("Solar OR wind acme -recall")?)?;
        let b = StandingQuery::new(&parse("acme  wind OR solar -recalled -recall")?)?;
        let c = StandingQuery::new(&parse("acme solar OR wind")?)?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }

    #[test]
    fn refuses_what_search_refuses() -> Result<(), QueryError> {
        let error = StandingQuery::new(&parse("acme \"!!\"")?).err();
        assert_eq!(error.map(|e| e.position), Some(5));
        Ok(())
    }
}

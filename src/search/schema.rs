//! The tantivy schema: English-stemmed text fields for the query language,
//! the store's normalised facet values for filters (so a filter narrows
//! search exactly as it narrows `List`), and the publish time for ranges.
//! Only published releases are indexed.

use std::{borrow::Cow, ops::Bound};

use tantivy::{
    Term,
    query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery},
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions,
    },
    tokenizer::{
        Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer,
        TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
    },
};
use uuid::Uuid;

use super::query::TextField;
use crate::{
    proto::v1::{PressRelease, press_release::BodyFormat},
    store::{Facet, ListQuery, facet_values},
};

/// Bumped whenever the schema or what is indexed changes; an index of
/// another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 2;

/// The name the text fields' analyzer is registered under (tantivy's own
/// name for this chain, so indexes written before it was ours still fit).
pub const ANALYZER: &str = "en_stem";

/// The analyzer of every text field and of every query word: words split
/// at anything not alphanumeric, those of 40 bytes or more dropped, lower
/// case, English (Snowball) stems. The index registers this very value, and
/// standing queries analyse releases with it, so both see the same words.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The same analyzer, for analysing one release at a time (standing
/// queries, their highlights): the stem of each word is remembered (per
/// thread), so the Snowball stemmer runs once per distinct word rather than
/// once per occurrence. The words and positions are [`analyzer`]'s.
pub fn remembering_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(RememberedStems)
        .build()
}

/// Distinct words whose stems a thread remembers; past that it forgets
/// them all and starts again.
const REMEMBERED_STEMS: usize = 50_000;

thread_local! {
    /// This thread's stems: word → stem, and the stemmer for new words.
    static STEMS: std::cell::RefCell<(std::collections::HashMap<String, String>, TextAnalyzer)> =
        std::cell::RefCell::new((
            std::collections::HashMap::new(),
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(Stemmer::new(Language::English))
                .build(),
        ));
}

/// The English stemmer, with the stems of the words seen remembered.
#[derive(Clone, Copy)]
struct RememberedStems;

impl TokenFilter for RememberedStems {
    type Tokenizer<T: Tokenizer> = RememberedStemsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> RememberedStemsFilter<T> {
        RememberedStemsFilter { inner: tokenizer }
    }
}

#[derive(Clone)]
struct RememberedStemsFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for RememberedStemsFilter<T> {
    type TokenStream<'a> = RememberedStemsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        RememberedStemsStream {
            tail: self.inner.token_stream(text),
        }
    }
}

struct RememberedStemsStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for RememberedStemsStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let word = &mut self.tail.token_mut().text;
        STEMS.with(|stems| {
            let (known, stemmer) = &mut *stems.borrow_mut();
            if let Some(stem) = known.get(word.as_str()) {
                word.clone_from(stem);
                return;
            }
            let mut stream = stemmer.token_stream(word);
            let stem = if stream.advance() {
                stream.token().text.clone()
            } else {
                word.clone()
            };
            drop(stream);
            if known.len() >= REMEMBERED_STEMS {
                known.clear();
            }
            known.insert(std::mem::replace(word, stem.clone()), stem);
        });
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// The fields of the schema.
#[derive(Clone)]
pub struct Fields {
    pub(crate) schema: Schema,
    pub(crate) id: Field,
    text: [(TextField, Field); 6],
    facets: [(Facet, Field); 7],
    publish_time: Field,
}

impl Fields {
    /// Builds the schema.
    pub fn new() -> Self {
        let mut builder = Schema::builder();
        let id = builder.add_text_field("id", STRING | STORED);
        let stemmed = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let text = TextField::ALL.map(|field| {
            (
                field,
                builder.add_text_field(text_name(field), stemmed.clone()),
            )
        });
        let facets =
            Facet::ALL.map(|facet| (facet, builder.add_text_field(facet_name(facet), STRING)));
        let publish_time = builder.add_i64_field("publish_time", INDEXED | FAST);
        Self {
            schema: builder.build(),
            id,
            text,
            facets,
            publish_time,
        }
    }

    /// The tantivy field of a text field.
    pub fn text(&self, field: TextField) -> Field {
        self.text
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, tantivy)| *tantivy)
            .unwrap_or(self.id)
    }

    fn facet(&self, facet: Facet) -> Field {
        self.facets
            .iter()
            .find(|(f, _)| *f == facet)
            .map(|(_, tantivy)| *tantivy)
            .unwrap_or(self.id)
    }

    /// The term naming a release's document.
    pub fn id_term(&self, id: &Uuid) -> Term {
        Term::from_field_text(self.id, &id.hyphenated().to_string())
    }

    /// The document of a published release.
    pub fn document(&self, id: &Uuid, release: &PressRelease) -> tantivy::TantivyDocument {
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_text(self.id, id.hyphenated().to_string());
        for (field, value) in text_values(release, |_| true) {
            doc.add_text(self.text(field), value);
        }
        for (facet, value) in facet_values(release) {
            doc.add_text(self.facet(facet), value);
        }
        doc.add_i64(
            self.publish_time,
            micros(&release.publish_time.unwrap_or_default()),
        );
        doc
    }

    /// The filter of a `List` query as a non-scoring tantivy query.
    pub fn filter(&self, query: &ListQuery) -> Vec<(Occur, Box<dyn Query>)> {
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (facet, values) in &query.facets {
            let any: Vec<(Occur, Box<dyn Query>)> = values
                .iter()
                .map(|value| {
                    let term = Term::from_field_text(self.facet(*facet), value);
                    let query: Box<dyn Query> =
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                    (Occur::Should, query)
                })
                .collect();
            out.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::new(any)), 0.0)),
            ));
        }
        if query.published_at_or_after.is_some() || query.published_before.is_some() {
            // Microsecond bounds, both inclusive: a superset of the exact
            // range, which the caller re-checks on the records it returns.
            let bound = |time: &Option<crate::proto::Timestamp>| match time {
                Some(time) => {
                    Bound::Included(Term::from_field_i64(self.publish_time, micros(time)))
                }
                None => Bound::Unbounded,
            };
            let range = RangeQuery::new(
                bound(&query.published_at_or_after),
                bound(&query.published_before),
            );
            out.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(range), 0.0)),
            ));
        }
        out
    }
}

impl Default for Fields {
    fn default() -> Self {
        Self::new()
    }
}

/// The values a release gives those of its text fields that `wanted`
/// names, in the order they are indexed: one each, except keywords (one
/// value per keyword) and the issuer's name (none without an issuer). The
/// index and standing queries both take a release's text from here.
pub fn text_values(
    release: &PressRelease,
    wanted: impl Fn(TextField) -> bool,
) -> Vec<(TextField, Cow<'_, str>)> {
    let mut out = Vec::new();
    for field in TextField::ALL {
        if !wanted(field) {
            continue;
        }
        match field {
            TextField::Headline => out.push((field, Cow::Borrowed(release.headline.as_str()))),
            TextField::Subheadline => {
                out.push((field, Cow::Borrowed(release.subheadline.as_str())))
            }
            TextField::Summary => out.push((field, Cow::Borrowed(release.summary.as_str()))),
            TextField::Body => out.push((field, plain_body(release))),
            TextField::Issuer => {
                if let Some(issuer) = &release.issuer {
                    out.push((field, Cow::Borrowed(issuer.name.as_str())));
                }
            }
            TextField::Keywords => out.extend(
                release
                    .keywords
                    .iter()
                    .map(|keyword| (field, Cow::Borrowed(keyword.as_str()))),
            ),
        }
    }
    out
}

/// The body as plain text: HTML tags dropped, entities decoded.
pub fn plain_body(release: &PressRelease) -> Cow<'_, str> {
    if release.body_format() == BodyFormat::Html {
        Cow::Owned(strip_tags(&release.body))
    } else {
        Cow::Borrowed(&release.body)
    }
}

/// The text of sanitised HTML. Bodies were cleaned by ammonia on write
/// (no scripts or styles left, tags well formed), so dropping everything
/// between `<` and `>` and decoding entities is enough, and much cheaper
/// than parsing again; each tag becomes a space so words do not run together.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => in_tag = true,
            (true, '>') => {
                in_tag = false;
                text.push(' ');
            }
            (false, c) => text.push(c),
            (true, _) => {}
        }
    }
    html_escape::decode_html_entities(&text).into_owned()
}

/// A time as microseconds since the epoch, rounded down.
fn micros(time: &crate::proto::Timestamp) -> i64 {
    time.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(time.nanos) / 1_000)
}

fn text_name(field: TextField) -> &'static str {
    match field {
        TextField::Headline => "headline",
        TextField::Subheadline => "subheadline",
        TextField::Summary => "summary",
        TextField::Body => "body",
        TextField::Issuer => "issuer",
        TextField::Keywords => "keywords",
    }
}

fn facet_name(facet: Facet) -> &'static str {
    match facet {
        Facet::Channel => "channel",
        Facet::Country => "country",
        Facet::Language => "language",
        Facet::Issuer => "issuer_name",
        Facet::Subject => "subject",
        Facet::Industry => "industry",
        Facet::Ticker => "ticker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_analyzer_is_tantivys_en_stem() {
        let text = "The Company's CEO re-opened 3 factories: écoles, naïve \
                    supercalifragilisticexpialidociousandthensome RUNNING runs ran";
        let words = |mut analyzer: TextAnalyzer| {
            let mut stream = analyzer.token_stream(text);
            let mut out = Vec::new();
            while stream.advance() {
                let token = stream.token();
                out.push((token.text.clone(), token.position));
            }
            out
        };
        let builtin = tantivy::tokenizer::TokenizerManager::default().get(ANALYZER);
        assert!(builtin.is_some(), "tantivy no longer has {ANALYZER}");
        if let Some(builtin) = builtin {
            assert_eq!(words(analyzer()), words(builtin));
        }
    }

    fn tokens(mut analyzer: TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let token = stream.token();
            out.push((
                token.text.clone(),
                token.position,
                token.offset_from,
                token.offset_to,
            ));
        }
        out
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn remembered_stems_are_the_stemmers(
            words in prop::collection::vec("[a-zA-Z\\u{e0}-\\u{ff}'-]{1,14}|[0-9]{1,5}|running|runs|ran|skies|dying|news", 0..40),
            twice in any::<bool>(),
        ) {
            let text = words.join(" ");
            let expected = tokens(analyzer(), &text);
            prop_assert_eq!(&tokens(remembering_analyzer(), &text), &expected);
            if twice {
                prop_assert_eq!(&tokens(remembering_analyzer(), &text), &expected);
            }
        }
    }

    #[test]
    fn strips_sanitised_html_to_its_words() {
        let html =
            ammonia::clean("<p>Acme&nbsp;&amp; Co <b>opened</b> a<br>plant</p><p>in Baku</p>");
        let text = strip_tags(&html);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            words,
            ["Acme", "&", "Co", "opened", "a", "plant", "in", "Baku"]
        );
    }
}

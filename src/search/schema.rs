//! The tantivy schema: English-stemmed text fields for the query language,
//! the store's normalised facet values for filters (so a filter narrows
//! search exactly as it narrows `List`), and the publish time for ranges.
//! Only published releases are indexed.

use std::ops::Bound;

use tantivy::{
    Term,
    query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery},
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions,
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
                .set_tokenizer("en_stem")
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
        doc.add_text(self.text(TextField::Headline), &release.headline);
        doc.add_text(self.text(TextField::Subheadline), &release.subheadline);
        doc.add_text(self.text(TextField::Summary), &release.summary);
        doc.add_text(self.text(TextField::Body), plain_body(release));
        if let Some(issuer) = &release.issuer {
            doc.add_text(self.text(TextField::Issuer), &issuer.name);
        }
        for keyword in &release.keywords {
            doc.add_text(self.text(TextField::Keywords), keyword);
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

/// The body as plain text: HTML tags dropped, entities decoded.
pub fn plain_body(release: &PressRelease) -> String {
    if release.body_format() == BodyFormat::Html {
        strip_tags(&release.body)
    } else {
        release.body.clone()
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

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
//!
//! This file owns the analysed query ([`StandingQuery`]); matching many at
//! once is `set.rs` ([`QuerySet`]), the in-memory index `batch.rs`
//! ([`BatchIndex`]).

mod batch;
mod set;

#[cfg(test)]
mod tests;

use std::hash::{Hash, Hasher};

use tantivy::snippet::SnippetGenerator;

pub use self::{batch::BatchIndex, set::QuerySet};
use super::{
    Highlighter, atom_fields, atom_words,
    query::{Atom, Query, QueryError, TextField},
    schema::{self, Fields},
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

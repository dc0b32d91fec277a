//! Matching a release against many standing queries at once: the queries
//! are compiled against one vocabulary, a release is analysed once (only
//! the words some query looks for are kept, with their field and position
//! counted as the index counts them), and only the queries anchored on a
//! word the release holds are checked in full.

use std::{cell::RefCell, collections::HashMap, sync::Arc};

use tantivy::tokenizer::TextAnalyzer;

use super::{FieldSet, StandingQuery, Words, slot};
use crate::{
    proto::v1::PressRelease,
    search::{
        query::TextField,
        schema::{self, text_values},
    },
};

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
    pub(super) fn compile<'a>(
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

//! The other way to match: an in-memory tantivy index of a batch of
//! releases, each query run on it. It is the reference the tests compare
//! the token matcher with, and the benchmark measures it against.

use tantivy::{
    Index, IndexWriter, TantivyDocument, collector::DocSetCollector, query::Query as TantivyQuery,
    schema::Value,
};
use uuid::Uuid;

use crate::{
    proto::v1::PressRelease,
    search::{
        SearchError, compile,
        query::Query,
        schema::{self, Fields},
    },
};

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

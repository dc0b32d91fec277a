//! The change log's entry: what every engine appends for each change it
//! commits, and what every reader of the log (watch streams, the search
//! indexer, the embargo scheduler) reads back. It is a prost message, so an
//! engine can keep it as it is.

use crate::proto::Timestamp;

/// What kind of change a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChangeKind {
    /// Never written.
    Unspecified = 0,
    /// A press release was created.
    Created = 1,
    /// A press release was changed.
    Updated = 2,
    /// An embargoed press release became visible.
    Published = 3,
    /// A press release was withdrawn and its content purged.
    Withdrawn = 4,
}

/// One entry of the change log. The entry names the release and the revision
/// the change produced; the content is read from the record, so that a
/// withdrawal purges it everywhere. What readers need to decide cheaply
/// whether an entry concerns them rides along: whether the release was
/// visible (published) before and after the change, and 8-byte hashes of its
/// filterable values then (never the values themselves), with the link to
/// the release's previous entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    /// Position in the log: 1, 2, 3, … with no gaps.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The release changed (16 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub release_id: Vec<u8>,
    /// The kind of change.
    #[prost(enumeration = "ChangeKind", tag = "3")]
    pub kind: i32,
    /// The release's revision after the change.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// When the change was committed.
    #[prost(message, optional, tag = "5")]
    pub commit_time: Option<Timestamp>,
    /// The release's previous entry (0 for a creation).
    #[prost(uint64, tag = "6")]
    pub prev_seq: u64,
    /// Whether the release was published before this change.
    #[prost(bool, tag = "7")]
    pub prev_visible: bool,
    /// Facet hashes of the version before this change, if it was published.
    #[prost(fixed64, repeated, tag = "8")]
    pub prev_facets: Vec<u64>,
    /// Whether the release is published after this change.
    #[prost(bool, tag = "9")]
    pub visible: bool,
    /// Facet hashes of the version after this change, if it is published.
    #[prost(fixed64, repeated, tag = "10")]
    pub facets: Vec<u64>,
}

impl LogEntry {
    /// The kind of change.
    pub fn change_kind(&self) -> ChangeKind {
        ChangeKind::try_from(self.kind).unwrap_or(ChangeKind::Unspecified)
    }
}

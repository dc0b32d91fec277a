//! Moving a whole store from one engine to another (`pressroom migrate`):
//! what an engine exports and another imports. Everything that makes the
//! store the same store travels: the store id, every record with its last
//! change-log entry, the change log itself with its commit times, and the
//! request ids and sources that keep creates idempotent. Indexes and counts
//! do not: the importing engine derives them from the records. Names,
//! revisions and etags are in the records, so a consumer's cursor and a
//! publisher's retry mean the same after the move.

use uuid::Uuid;

use crate::proto::{Timestamp, v1::PressRelease};

use super::LogEntry;

/// One piece of a store being moved.
#[derive(Clone, Debug, PartialEq)]
pub enum TransferItem {
    /// A release's current record and the sequence number of its last entry.
    Release {
        /// The release id.
        id: Uuid,
        /// The record (a tombstone for a withdrawn release).
        release: Box<PressRelease>,
        /// Its last change-log entry.
        last_seq: u64,
    },
    /// A change-log entry.
    Entry(LogEntry),
    /// A commit: when it was made, and its first entry.
    Commit {
        /// Its first sequence number.
        first_seq: u64,
        /// Its commit time.
        time: Timestamp,
    },
    /// A request id and the release it created.
    RequestId {
        /// The request id.
        request_id: String,
        /// The release it created.
        release_id: Uuid,
    },
    /// A source and the release that holds it.
    Source {
        /// `source.provider`.
        provider: String,
        /// `source.item_id`.
        item_id: String,
        /// The release that holds it.
        release_id: Uuid,
        /// The fingerprint of the content it was created with.
        fingerprint: Vec<u8>,
    },
}

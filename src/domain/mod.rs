//! The rules of press releases: validation and sanitising, names, etags and
//! revisions, embargo state, idempotent creates, field masks, withdrawal as a
//! purge, and paging. [`PressReleases`] takes the API's request messages
//! (plain prost structs) and answers with records or a [`DomainError`]; it
//! never sees gRPC metadata or statuses, and it never touches sled: reads go
//! to the [`Store`] and every write to the one [`Writer`].
//!
//! The service is split by job, one file each: [`create`](PressReleases::create)
//! and [`import`](PressReleases::import) (the import pipeline), `list`,
//! `update`, `withdraw`, `search`, `stats`, `backup`, and the publishing of
//! embargoes that are due (`embargo`); `record` makes and stamps the stored
//! records; `versions` turns a later version of a stored source into an
//! update. Get and the lookups they share are here.

mod backup;
mod caller;
mod create;
mod embargo;
mod error;
pub mod filter;
mod import;
mod list;
pub mod name;
pub mod page_token;
mod record;
mod search;
mod stats;
pub mod subscription;
mod update;
pub mod update_mask;
pub mod validate;
mod versions;
mod withdraw;

use std::sync::Arc;

use uuid::Uuid;

pub use backup::BackupStream;
pub use caller::{Caller, Role};
pub use create::validate_new;
pub use embargo::Publishing;
pub use error::{DomainError, FieldViolation};
pub use import::{IMPORT_BATCH, ImportSummary};
pub use list::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use search::{MAX_SEARCH_PAGE_SIZE, check_query, standing_query};

use crate::{
    proto::v1::{GetPressReleaseRequest, PressRelease, press_release::State},
    search::SearchIndex,
    store::{Store, Writer},
};

/// The press-release service: rules on top of a store, its writer and the
/// search index.
#[derive(Clone)]
pub struct PressReleases {
    store: Arc<dyn Store>,
    writer: Writer,
    search: SearchIndex,
}

impl PressReleases {
    /// A service over `store`, writing through `writer`, searching `search`.
    pub fn new(store: Arc<dyn Store>, writer: Writer, search: SearchIndex) -> Self {
        Self {
            store,
            writer,
            search,
        }
    }

    /// How far reads reflect the change log right now; cheap (no record
    /// is read), for validators of answers that callers keep.
    pub fn read_positions(&self) -> ReadPositions {
        ReadPositions {
            durable: *self.writer.durable_head().borrow(),
            searchable: self.search.position(),
        }
    }

    /// Gets a press release that is not withdrawn.
    pub async fn get(
        &self,
        request: GetPressReleaseRequest,
        caller: &Caller,
    ) -> Result<PressRelease, DomainError> {
        let id = name::parse("name", &request.name)?;
        let release = self.current(&id, &request.name).await?;
        if release.state() == State::Embargoed && !caller.role.sees_embargoed() {
            return Err(not_found(&request.name));
        }
        Ok(release)
    }

    /// The record of a release that exists and is not withdrawn.
    async fn current(&self, id: &Uuid, name: &str) -> Result<PressRelease, DomainError> {
        match self.store.get(id).await? {
            Some(release) if release.state() != State::Withdrawn => Ok(release),
            _ => Err(not_found(name)),
        }
    }
}

/// How far reads reflect the change log: `Get` and `List` show every change
/// up to `durable` (at least), `Search` finds what the index held at
/// `searchable` (at most `durable`). An answer read after these were taken
/// is at least as new as they say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReadPositions {
    /// The last change on disk.
    pub durable: u64,
    /// The last change the search index holds.
    pub searchable: u64,
}

/// The error for a release that does not exist (or may not be seen).
fn not_found(name: &str) -> DomainError {
    DomainError::NotFound { name: name.into() }
}

/// The error for an etag that is not the current revision's.
fn stale_etag(current: &PressRelease) -> DomainError {
    DomainError::Aborted(format!(
        "the etag is not current: {} is at revision {}; get it and apply your change again",
        current.name, current.revision
    ))
}

/// The error for a store outcome the domain did not ask for.
fn unexpected(outcome: impl std::fmt::Debug) -> DomainError {
    DomainError::Internal(format!("unexpected store outcome: {outcome:?}").into())
}

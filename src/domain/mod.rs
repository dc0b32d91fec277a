//! The rules of press releases: validation and sanitising, names, etags and
//! revisions, embargo state, idempotent creates, field masks, withdrawal as a
//! purge, and paging. [`PressReleases`] takes the API's request messages
//! (plain prost structs) and answers with records or a [`DomainError`]; it
//! never sees gRPC metadata or statuses, and it never touches sled: reads go
//! to the [`Store`] and every write to the one [`Writer`].

mod backup;
mod caller;
mod error;
pub mod filter;
pub mod name;
pub mod page_token;
mod search;
mod stats;
pub mod update_mask;
pub mod validate;

use std::sync::Arc;

use crate::proto::{Timestamp, compare_times};
use prost::Message as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use backup::BackupStream;
pub use caller::{Caller, Role};
pub use error::{DomainError, FieldViolation};

use crate::{
    proto::v1::{
        CreatePressReleaseRequest, DeletePressReleaseRequest, GetPressReleaseRequest,
        ImportPressReleasesRequest, ListPressReleasesRequest, ListPressReleasesResponse,
        PressRelease, UpdatePressReleaseRequest, press_release::State,
    },
    search::SearchIndex,
    store::{
        Applied, Change, ChangeKind, ListPosition, NewRelease, Rejected, Replacement, Store,
        StoreError, Writer,
    },
};
use validate::{MAX_HEADLINE_CHARS, Violations};

/// Default page size of `List`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size of `List`; larger requests are clamped.
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest request id.
const MAX_REQUEST_ID_CHARS: usize = 128;
/// How often an unconditional withdrawal retries after losing a race.
const WITHDRAW_ATTEMPTS: usize = 5;
/// Most embargoed releases published in one commit.
const PUBLISH_BATCH: usize = 256;
/// Items of an import committed together.
pub const IMPORT_BATCH: usize = 1_000;

/// What one round of embargo publishing did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Publishing {
    /// Releases published.
    pub published: usize,
    /// More are due right away.
    pub more: bool,
    /// Some were due but could not be published (they are retried).
    pub stuck: bool,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Press releases created.
    pub created: i64,
    /// Items already stored.
    pub duplicates: i64,
    /// Rejected items: their index in the stream and why.
    pub failed: Vec<(i64, DomainError)>,
}

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

    /// Creates a press release (idempotent by request id and by source).
    pub async fn create(
        &self,
        request: CreatePressReleaseRequest,
    ) -> Result<PressRelease, DomainError> {
        let item = ImportPressReleasesRequest {
            press_release: request.press_release,
            request_id: request.request_id,
        };
        // Sanitising HTML is CPU work: keep it off the async threads.
        let new = tokio::task::spawn_blocking(move || prepare_import(item))
            .await
            .map_err(DomainError::from_join)??;
        match self.writer.submit(Change::Create(new)).await? {
            Ok(Applied::Committed { release, .. } | Applied::Existing(release)) => Ok(release),
            Err(rejected) => Err(create_rejected(rejected)),
        }
    }

    /// Gets a press release that is not withdrawn.
    pub async fn get(
        &self,
        request: GetPressReleaseRequest,
        caller: &Caller,
    ) -> Result<PressRelease, DomainError> {
        let id = name::parse("name", &request.name)?;
        let release = self.current(&id, &request.name)?;
        if release.state() == State::Embargoed && !caller.role.sees_embargoed() {
            return Err(not_found(&request.name));
        }
        Ok(release)
    }

    /// Lists published press releases, newest first, one page at a time.
    pub async fn list(
        &self,
        request: ListPressReleasesRequest,
        caller: &Caller,
    ) -> Result<ListPressReleasesResponse, DomainError> {
        let include_embargoed = request.include_embargoed;
        if include_embargoed && !caller.role.sees_embargoed() {
            return Err(DomainError::PermissionDenied(format!(
                "include_embargoed needs the publisher role; {:?} has {}",
                caller.name, caller.role
            )));
        }
        let page_size = match request.page_size {
            size if size < 0 => {
                return Err(DomainError::invalid("page_size", "must not be negative"));
            }
            0 => DEFAULT_PAGE_SIZE,
            size => (size as usize).min(MAX_PAGE_SIZE),
        };
        let query = filter::to_query(request.filter.as_ref(), "filter")?;
        let fingerprint =
            filter::fingerprint(&query, if include_embargoed { "embargoed" } else { "" });
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(page_token::decode(token, fingerprint).map_err(|e| e.to_domain())?),
        };
        let store = Arc::clone(&self.store);
        let mut page = tokio::task::spawn_blocking(move || {
            let mut page = store.list(&query, after.as_ref(), page_size + 1)?;
            if include_embargoed {
                // Pending embargoes are few: merge them in by position.
                for release in store.embargoed()? {
                    let Ok(id) = name::parse("", &release.name) else {
                        continue;
                    };
                    let position =
                        ListPosition::new(&release.publish_time.unwrap_or_default(), &id);
                    if query.matches(&release) && after.is_none_or(|after| position > after) {
                        page.push((position, release));
                    }
                }
                page.sort_by_key(|(position, _)| *position);
                page.truncate(page_size + 1);
            }
            Ok::<_, StoreError>(page)
        })
        .await
        .map_err(DomainError::from_join)??;
        let next_page_token = if page.len() > page_size {
            page.truncate(page_size);
            page.last()
                .map(|(position, _)| page_token::encode(fingerprint, position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPressReleasesResponse {
            press_releases: page.into_iter().map(|(_, release)| release).collect(),
            next_page_token,
        })
    }

    /// Updates the fields named by the mask, if the etag is current.
    pub async fn update(
        &self,
        request: UpdatePressReleaseRequest,
    ) -> Result<PressRelease, DomainError> {
        let patch = request
            .press_release
            .ok_or_else(|| DomainError::invalid("press_release", "is required"))?;
        let id = name::parse("press_release.name", &patch.name)?;
        if patch.etag.is_empty() {
            return Err(DomainError::invalid(
                "press_release.etag",
                "is required: send the etag of the revision you are changing",
            ));
        }
        let paths = update_mask::paths(request.update_mask.as_ref(), &patch)?;
        let current = self.current(&id, &patch.name)?;
        if current.etag != patch.etag {
            return Err(stale_etag(&current));
        }

        let mut next = current.clone();
        update_mask::apply(&mut next, &patch, &paths);
        if next.source != current.source {
            return Err(DomainError::invalid(
                "press_release.source",
                "cannot be changed; create a new press release instead",
            ));
        }
        let mut next = tokio::task::spawn_blocking(move || {
            validate::check_content(&mut next, "press_release").map(|()| next)
        })
        .await
        .map_err(DomainError::from_join)??;

        let now = now();
        if paths.contains(&"embargo_time")
            && !paths.contains(&"publish_time")
            && current.publish_time == current.embargo_time
        {
            // The publish time was the embargo time by default; keep it so.
            next.publish_time = Some(next.embargo_time.unwrap_or(now));
        }
        let embargoed = next
            .embargo_time
            .is_some_and(|at| compare_times(&at, &now).is_gt());
        let kind = match (current.state(), embargoed) {
            (State::Published, true) => {
                return Err(DomainError::FailedPrecondition(format!(
                    "{} is already published and cannot be embargoed again",
                    current.name
                )));
            }
            (State::Embargoed, true) => ChangeKind::Updated,
            (State::Embargoed, false) => {
                next.set_state(State::Published);
                ChangeKind::Published
            }
            _ => ChangeKind::Updated,
        };
        stamp(&mut next, &id, now);
        let replacement = Replacement {
            id,
            expected_revision: current.revision,
            release: next,
            kind,
        };
        match self.writer.submit(Change::Replace(replacement)).await? {
            Ok(Applied::Committed { release, .. }) => Ok(release),
            Err(Rejected::Stale(latest)) => Err(stale_etag(&latest)),
            Err(Rejected::NotFound) => Err(not_found(&patch.name)),
            other => Err(unexpected(other)),
        }
    }

    /// Withdraws a press release: its content is purged and a tombstone kept.
    pub async fn withdraw(
        &self,
        request: DeletePressReleaseRequest,
    ) -> Result<PressRelease, DomainError> {
        let id = name::parse("name", &request.name)?;
        let mut v = Violations::default();
        v.line("reason", &request.reason, MAX_HEADLINE_CHARS);
        v.into_result()?;
        for _ in 0..WITHDRAW_ATTEMPTS {
            let current = self.current(&id, &request.name)?;
            if !request.etag.is_empty() && current.etag != request.etag {
                return Err(stale_etag(&current));
            }
            let mut tombstone = PressRelease {
                name: current.name.clone(),
                state: State::Withdrawn as i32,
                create_time: current.create_time,
                revision: current.revision,
                withdrawal_reason: request.reason.clone(),
                ..Default::default()
            };
            stamp(&mut tombstone, &id, now());
            let replacement = Replacement {
                id,
                expected_revision: current.revision,
                release: tombstone,
                kind: ChangeKind::Withdrawn,
            };
            match self.writer.submit(Change::Replace(replacement)).await? {
                Ok(Applied::Committed { release, .. }) => {
                    tracing::info!(name = %release.name, "press release withdrawn");
                    return Ok(release);
                }
                Err(Rejected::Stale(latest)) if request.etag.is_empty() => {
                    tracing::debug!(name = %latest.name, "withdrawal raced an update; retrying");
                }
                Err(Rejected::Stale(latest)) => return Err(stale_etag(&latest)),
                Err(Rejected::NotFound) => return Err(not_found(&request.name)),
                other => return Err(unexpected(other)),
            }
        }
        Err(DomainError::Aborted(format!(
            "{} kept changing while being withdrawn; try again",
            request.name
        )))
    }

    /// Publishes the embargoed releases whose time has come.
    pub async fn publish_due(&self, now: Timestamp) -> Result<Publishing, DomainError> {
        let due = self.store.embargoes_due(&now, PUBLISH_BATCH)?;
        let mut changes = Vec::with_capacity(due.len());
        for id in &due {
            let Some(current) = self.store.get(id)? else {
                continue;
            };
            if current.state() != State::Embargoed {
                continue;
            }
            let mut next = current.clone();
            next.set_state(State::Published);
            stamp(&mut next, id, now);
            changes.push(Change::Replace(Replacement {
                id: *id,
                expected_revision: current.revision,
                release: next,
                kind: ChangeKind::Published,
            }));
        }
        let results = if changes.is_empty() {
            Vec::new()
        } else {
            self.writer.submit_all(changes).await?
        };
        let mut published = 0;
        for result in results {
            match result {
                Ok(Applied::Committed { release, .. }) => {
                    tracing::info!(name = %release.name, "embargo lifted: press release published");
                    published += 1;
                }
                // Changed meanwhile; the next round looks again.
                other => tracing::debug!(outcome = ?other.map(|_| ()), "publishing raced a change"),
            }
        }
        Ok(Publishing {
            published,
            more: due.len() == PUBLISH_BATCH && published > 0,
            stuck: published < due.len(),
        })
    }

    /// Imports a stream of items, committing them in large batches; one bad
    /// item never fails the others.
    pub async fn import(
        &self,
        mut items: impl tokio_stream::Stream<Item = ImportPressReleasesRequest> + Unpin,
    ) -> Result<ImportSummary, DomainError> {
        use tokio_stream::StreamExt as _;
        // Batches are checked on the blocking pool while the one before is
        // committed; each waits for the one before to be submitted first, so
        // commits keep the stream's order. At most two are in flight.
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let mut batch: Vec<(i64, ImportPressReleasesRequest)> = Vec::with_capacity(IMPORT_BATCH);
        let mut tail: Option<ImportTask> = None;
        let mut index = 0i64;
        loop {
            let item = items.next().await;
            let end = item.is_none();
            if let Some(item) = item {
                batch.push((index, item));
                index += 1;
            }
            if batch.len() >= IMPORT_BATCH || (end && !batch.is_empty()) {
                let slot = Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .map_err(|e| DomainError::Internal(Box::new(e)))?;
                let previous = tail.take();
                let writer = self.writer.clone();
                let checking = std::mem::take(&mut batch);
                tail = Some(tokio::spawn(async move {
                    let _slot = slot;
                    let checked = tokio::task::spawn_blocking(move || {
                        checking
                            .into_iter()
                            .map(|(index, item)| (index, prepare_import(item)))
                            .collect::<Vec<_>>()
                    })
                    .await
                    .map_err(DomainError::from_join)?;
                    let mut summary = match previous {
                        Some(previous) => join_import(previous).await?,
                        None => ImportSummary::default(),
                    };
                    summary.add(commit_import(&writer, checked).await?);
                    Ok(summary)
                }));
            }
            if end {
                break;
            }
        }
        let mut summary = match tail {
            Some(tail) => join_import(tail).await?,
            None => ImportSummary::default(),
        };
        summary.failed.sort_by_key(|(index, _)| *index);
        Ok(summary)
    }

    /// The record of a release that exists and is not withdrawn.
    fn current(&self, id: &Uuid, name: &str) -> Result<PressRelease, DomainError> {
        match self.store.get(id)? {
            Some(release) if release.state() != State::Withdrawn => Ok(release),
            _ => Err(not_found(name)),
        }
    }
}

impl ImportSummary {
    fn add(&mut self, other: ImportSummary) {
        self.created += other.created;
        self.duplicates += other.duplicates;
        self.failed.extend(other.failed);
    }
}

/// A batch of an import being checked and committed.
type ImportTask = tokio::task::JoinHandle<Result<ImportSummary, DomainError>>;

async fn join_import(task: ImportTask) -> Result<ImportSummary, DomainError> {
    task.await.map_err(DomainError::from_join)?
}

/// Commits the items of a batch that passed their checks, in one submission.
async fn commit_import(
    writer: &Writer,
    checked: Vec<(i64, Result<NewRelease, DomainError>)>,
) -> Result<ImportSummary, DomainError> {
    let mut summary = ImportSummary::default();
    let mut indexes = Vec::with_capacity(checked.len());
    let mut changes = Vec::with_capacity(checked.len());
    for (index, new) in checked {
        match new {
            Ok(new) => {
                indexes.push(index);
                changes.push(Change::Create(new));
            }
            Err(error) => summary.failed.push((index, error)),
        }
    }
    if changes.is_empty() {
        return Ok(summary);
    }
    let results = writer.submit_all(changes).await?;
    for (index, result) in indexes.into_iter().zip(results) {
        match result {
            Ok(Applied::Committed { .. }) => summary.created += 1,
            Ok(Applied::Existing(_)) => summary.duplicates += 1,
            Err(rejected) => summary.failed.push((index, create_rejected(rejected))),
        }
    }
    Ok(summary)
}

/// Checks a press release as `CreatePressRelease` would, without writing
/// anything; returns it as it would be stored (sanitised, normalised).
pub fn validate_new(release: PressRelease) -> Result<PressRelease, DomainError> {
    prepare_new(release, "press_release", now()).map(|new| new.release)
}

/// Checks one item to create (a create request or an import item) and makes
/// the record.
fn prepare_import(item: ImportPressReleasesRequest) -> Result<NewRelease, DomainError> {
    let mut v = Violations::default();
    v.line("request_id", &item.request_id, MAX_REQUEST_ID_CHARS);
    v.into_result()?;
    let input = item
        .press_release
        .ok_or_else(|| DomainError::invalid("press_release", "is required"))?;
    let new = prepare_new(input, "press_release", now())?;
    let request_id = (!item.request_id.is_empty()).then_some(item.request_id);
    Ok(NewRelease { request_id, ..new })
}

/// The error for a create the store refused.
fn create_rejected(rejected: Rejected) -> DomainError {
    match rejected {
        Rejected::SourceTaken(existing) => DomainError::AlreadyExists {
            message: format!(
                "{} already holds this source (provider and item_id) with other content",
                existing.name
            ),
            name: existing.name,
        },
        other => unexpected(other),
    }
}

/// Checks a caller's press release and makes the record to create: output-only
/// fields set by the server, publish time and state settled by the embargo.
fn prepare_new(
    input: PressRelease,
    prefix: &str,
    now: Timestamp,
) -> Result<NewRelease, DomainError> {
    let mut release = PressRelease {
        name: String::new(),
        state: 0,
        create_time: None,
        update_time: None,
        revision: 0,
        etag: String::new(),
        withdrawal_reason: String::new(),
        ..input
    };
    validate::check_content(&mut release, prefix)?;
    let fingerprint = Sha256::digest(release.encode_to_vec()).to_vec();
    let source = release
        .source
        .as_ref()
        .filter(|s| !s.provider.is_empty())
        .map(|s| (s.provider.clone(), s.item_id.clone()));

    let id = Uuid::now_v7();
    release.name = name::format(&id);
    release.create_time = Some(now);
    if release.publish_time.is_none() {
        release.publish_time = Some(release.embargo_time.unwrap_or(now));
    }
    let embargoed = release
        .embargo_time
        .is_some_and(|at| compare_times(&at, &now).is_gt());
    release.set_state(if embargoed {
        State::Embargoed
    } else {
        State::Published
    });
    stamp(&mut release, &id, now);
    Ok(NewRelease {
        id,
        release,
        request_id: None,
        source,
        fingerprint,
    })
}

/// Marks a record as the next revision: revision, update time and etag.
fn stamp(release: &mut PressRelease, id: &Uuid, now: Timestamp) {
    release.revision += 1;
    release.update_time = Some(now);
    release.etag = etag(id, release.revision, &now);
}

/// An opaque etag, different for every revision of every release.
fn etag(id: &Uuid, revision: i64, update_time: &Timestamp) -> String {
    let mut hash = Sha256::new();
    hash.update(id.as_bytes());
    hash.update(revision.to_le_bytes());
    hash.update(update_time.seconds.to_le_bytes());
    hash.update(update_time.nanos.to_le_bytes());
    let digest = hash.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> Timestamp {
    crate::proto::now()
}

fn not_found(name: &str) -> DomainError {
    DomainError::NotFound { name: name.into() }
}

fn stale_etag(current: &PressRelease) -> DomainError {
    DomainError::Aborted(format!(
        "the etag is not current: {} is at revision {}; get it and apply your change again",
        current.name, current.revision
    ))
}

fn unexpected(outcome: impl std::fmt::Debug) -> DomainError {
    DomainError::Internal(format!("unexpected store outcome: {outcome:?}").into())
}

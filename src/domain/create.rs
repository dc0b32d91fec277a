//! `CreatePressRelease`: one new press release, checked (off the async
//! threads when its body is HTML or large: sanitising and hashing are CPU
//! work) and committed through the writer; idempotent by request id and by
//! source, where a later version of a stored source updates it
//! (`versions`). Import items go through the same checks
//! ([`prepare_import`]).

use super::{DomainError, PressReleases, record, validate::Violations, versions};
use crate::{
    proto::{
        now,
        v1::{
            CreatePressReleaseRequest, ImportPressReleasesRequest, PressRelease,
            press_release::BodyFormat,
        },
    },
    store::{Applied, Change, NewRelease, Rejected},
};

/// Longest request id.
const MAX_REQUEST_ID_CHARS: usize = 128;
/// Largest plain body checked on an async thread.
const INLINE_BODY_BYTES: usize = 64 * 1024;

impl PressReleases {
    /// Creates a press release (idempotent by request id and by source).
    pub async fn create(
        &self,
        request: CreatePressReleaseRequest,
    ) -> Result<PressRelease, DomainError> {
        let item = ImportPressReleasesRequest {
            press_release: request.press_release,
            request_id: request.request_id,
        };
        // Sanitising HTML and hashing a large body are CPU work: keep them
        // off the async threads. A small plain body is checked in place
        // (cheaper than the hand-off).
        let heavy = item.press_release.as_ref().is_some_and(|release| {
            release.body_format == BodyFormat::Html as i32 || release.body.len() > INLINE_BODY_BYTES
        });
        let new = if heavy {
            tokio::task::spawn_blocking(move || prepare_import(item))
                .await
                .map_err(DomainError::from_join)??
        } else {
            prepare_import(item)?
        };
        let later = versions::may_supersede(&new).then(|| new.clone());
        match (self.writer.submit(Change::Create(new)).await?, later) {
            (Ok(Applied::Committed { release, .. } | Applied::Existing(release)), _) => Ok(release),
            (Err(Rejected::SourceTaken(current)), Some(new)) => {
                let settled =
                    versions::supersede_all(&self.writer, vec![((), new, current)]).await?;
                match settled.into_iter().next() {
                    Some((_, outcome)) => outcome.map(|outcome| match outcome {
                        versions::VersionOutcome::Updated(release)
                        | versions::VersionOutcome::Older(release) => release,
                    }),
                    None => Err(super::unexpected("no outcome for a later version")),
                }
            }
            (Err(rejected), _) => Err(create_rejected(rejected)),
        }
    }
}

/// Checks a press release as `CreatePressRelease` would, without writing
/// anything; returns it as it would be stored (sanitised, normalised).
pub fn validate_new(release: PressRelease) -> Result<PressRelease, DomainError> {
    record::prepare_new(release, now()).map(|new| new.release)
}

/// Checks one item to create (a create request or an import item) and makes
/// the record.
pub(super) fn prepare_import(item: ImportPressReleasesRequest) -> Result<NewRelease, DomainError> {
    let mut v = Violations::default();
    v.line("request_id", &item.request_id, MAX_REQUEST_ID_CHARS);
    v.into_result()?;
    let input = item
        .press_release
        .ok_or_else(|| DomainError::invalid("press_release", "is required"))?;
    let new = record::prepare_new(input, now())?;
    let request_id = (!item.request_id.is_empty()).then_some(item.request_id);
    Ok(NewRelease { request_id, ..new })
}

/// The error for a create the store refused.
pub(super) fn create_rejected(rejected: Rejected) -> DomainError {
    match rejected {
        Rejected::SourceTaken(existing) => DomainError::AlreadyExists {
            message: format!(
                "{} already holds this source (provider and item_id) with other content",
                existing.name
            ),
            name: existing.name,
        },
        other => super::unexpected(other),
    }
}

//! `DeletePressRelease`: withdrawal as a purge. The content is replaced by
//! a tombstone that keeps the name, the revision and the reason, so that
//! consumers of the feed are told.

use super::{
    DomainError, PressReleases, name, not_found,
    record::stamp,
    stale_etag, unexpected,
    validate::{MAX_HEADLINE_CHARS, Violations},
};
use crate::{
    proto::{
        now,
        v1::{DeletePressReleaseRequest, PressRelease, press_release::State},
    },
    store::{Applied, Change, ChangeKind, Rejected, Replacement},
};

/// How often an unconditional withdrawal retries after losing a race.
const WITHDRAW_ATTEMPTS: usize = 5;

impl PressReleases {
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
            let current = self.current(&id, &request.name).await?;
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
                source_fingerprint: None,
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
}

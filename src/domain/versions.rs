//! Later versions of a source. A wire sends a corrected or extended story
//! under the same id with a greater version (NewsML-G2 and ninjs `version`,
//! a feed item's modification time). A create or import item whose source
//! (provider, item_id) is already stored is then not a conflict but an
//! update: the press release keeps its name and creation time, gets the new
//! content, one more revision and an UPDATED (or PUBLISHED) event. An older
//! version than the stored one changes nothing and counts as a duplicate; an
//! equal version with other content stays ALREADY_EXISTS.
//!
//! The rule lives in the domain; the store only needs to swap the record and
//! the source claim's fingerprint in one commit (a `Change::Replace` with a
//! `source_fingerprint`), with the usual compare-and-swap on the revision, so
//! concurrent versions of one source settle in version order whichever
//! arrives first.

use super::{
    DomainError, name,
    record::{settle_embargo, stamp},
};
use crate::{
    proto::{
        now,
        v1::{PressRelease, press_release::State},
    },
    store::{Applied, Change, NewRelease, Rejected, Replacement, Writer},
};

/// Rounds of compare-and-swap before giving up on a source that keeps
/// changing (each round settles at least one of the versions in flight).
const MAX_ROUNDS: usize = 16;

/// What a newer-version attempt came to.
#[derive(Debug)]
pub(super) enum VersionOutcome {
    /// The stored press release now holds this version.
    Updated(PressRelease),
    /// The stored version is newer: nothing changed.
    Older(PressRelease),
}

/// The provider's version of a release's source (0 when unknown).
pub(super) fn source_version(release: &PressRelease) -> i64 {
    release.source.as_ref().map_or(0, |s| s.version)
}

/// Whether a create refused with `SourceTaken` may be a later version: only
/// items that carry a version are kept for a second look.
pub(super) fn may_supersede(new: &NewRelease) -> bool {
    new.source.is_some() && source_version(&new.release) > 0
}

/// Settles creates whose source was taken, in the order given: each becomes
/// an update of the stored release (newer version), a duplicate (older), or
/// an error (equal version with other content, a withdrawn release, or an
/// embargo that can no longer be set).
pub(super) async fn supersede_all<K: Copy>(
    writer: &Writer,
    items: Vec<(K, NewRelease, PressRelease)>,
) -> Result<Vec<(K, Result<VersionOutcome, DomainError>)>, DomainError> {
    let mut done = Vec::with_capacity(items.len());
    let mut pending = items;
    for _ in 0..MAX_ROUNDS {
        if pending.is_empty() {
            break;
        }
        let mut attempts = Vec::new();
        let mut changes = Vec::new();
        for (key, new, current) in pending.drain(..) {
            match plan(&new, &current) {
                Ok(Some(change)) => {
                    changes.push(change);
                    attempts.push((key, new));
                }
                Ok(None) => done.push((key, Ok(VersionOutcome::Older(current)))),
                Err(error) => done.push((key, Err(error))),
            }
        }
        if changes.is_empty() {
            break;
        }
        let results = writer.submit_all(changes).await?;
        for ((key, new), result) in attempts.into_iter().zip(results) {
            match result {
                Ok(Applied::Committed { release, .. }) => {
                    tracing::info!(
                        name = %release.name,
                        version = source_version(&release),
                        "a later version of the source updated the press release"
                    );
                    done.push((key, Ok(VersionOutcome::Updated(release))));
                }
                // Changed meanwhile (maybe by another version): look again.
                Err(Rejected::Stale(latest)) => pending.push((key, new, latest)),
                other => done.push((
                    key,
                    Err(DomainError::Internal(
                        format!("unexpected store outcome: {other:?}").into(),
                    )),
                )),
            }
        }
    }
    for (key, _, current) in pending {
        done.push((
            key,
            Err(DomainError::Aborted(format!(
                "{} kept changing while a later version was applied; try again",
                current.name
            ))),
        ));
    }
    Ok(done)
}

/// The change that puts `new` in place of `current`, or `None` when the
/// stored version is newer.
fn plan(new: &NewRelease, current: &PressRelease) -> Result<Option<Change>, DomainError> {
    let (version, stored) = (source_version(&new.release), source_version(current));
    if current.state() == State::Withdrawn {
        return Err(taken(
            current,
            "was withdrawn; its source is not used again",
        ));
    }
    if version < stored {
        return Ok(None);
    }
    if version == stored {
        return Err(taken(
            current,
            &format!("already holds version {stored} of this source with other content"),
        ));
    }
    let id = name::parse("name", &current.name)?;
    let now = now();
    let mut next = new.release.clone();
    // prepare_new defaulted an unset publish time to the create time: a later
    // version without one keeps the time the release was published at,
    // unless that was only the embargo time of a release still under
    // embargo, which this version publishes now.
    let held_for_embargo =
        current.state() == State::Embargoed && current.publish_time == current.embargo_time;
    if next.publish_time == next.create_time && next.embargo_time.is_none() && !held_for_embargo {
        next.publish_time = current.publish_time;
    }
    next.name.clone_from(&current.name);
    next.create_time = current.create_time;
    next.revision = current.revision;
    let kind = settle_embargo(current, &mut next, &now)?;
    stamp(&mut next, &id, now);
    Ok(Some(Change::Replace(Replacement {
        id,
        expected_revision: current.revision,
        release: next,
        kind,
        source_fingerprint: Some(new.fingerprint.clone()),
    })))
}

fn taken(current: &PressRelease, why: &str) -> DomainError {
    DomainError::AlreadyExists {
        message: format!("{} {why}", current.name),
        name: current.name.clone(),
    }
}

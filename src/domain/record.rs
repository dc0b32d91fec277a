//! The records the domain stores: a new release made from a caller's input
//! (output-only fields set by the server, publish time and state settled by
//! the embargo), the state a later revision takes by its embargo (one rule
//! for updates and later versions of a source), and the stamp every new
//! revision gets (revision, update time, etag).

use prost::Message as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{DomainError, name, validate};
use crate::{
    proto::{
        Timestamp, compare_times,
        v1::{PressRelease, press_release::State},
    },
    store::{ChangeKind, NewRelease},
};

/// Checks a caller's press release and makes the record to create: output-only
/// fields set by the server, publish time and state settled by the embargo.
pub(super) fn prepare_new(input: PressRelease, now: Timestamp) -> Result<NewRelease, DomainError> {
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
    validate::check_content(&mut release)?;
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
    release.set_state(if under_embargo(&release, &now) {
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

/// Whether a release's embargo is still to come at `now`.
fn under_embargo(release: &PressRelease, now: &Timestamp) -> bool {
    release
        .embargo_time
        .is_some_and(|at| compare_times(&at, now).is_gt())
}

/// Settles the state of `next`, the revision to follow `current`, by its
/// embargo at `now`, and says what kind of change it is: an embargo still
/// to come keeps an embargoed release embargoed; a passed or removed one
/// publishes it (a PUBLISHED change); a published release cannot be
/// embargoed again.
pub(super) fn settle_embargo(
    current: &PressRelease,
    next: &mut PressRelease,
    now: &Timestamp,
) -> Result<ChangeKind, DomainError> {
    let (state, kind) = match (current.state(), under_embargo(next, now)) {
        (State::Embargoed, true) => (State::Embargoed, ChangeKind::Updated),
        (State::Embargoed, false) => (State::Published, ChangeKind::Published),
        (_, true) => {
            return Err(DomainError::FailedPrecondition(format!(
                "{} is already published and cannot be embargoed again",
                current.name
            )));
        }
        (_, false) => (State::Published, ChangeKind::Updated),
    };
    next.set_state(state);
    Ok(kind)
}

/// Marks a record as the next revision: revision, update time and etag.
pub(super) fn stamp(release: &mut PressRelease, id: &Uuid, now: Timestamp) {
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

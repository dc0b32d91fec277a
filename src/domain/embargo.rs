//! Publishing embargoed press releases whose time has come, a batch at a
//! time; the embargo scheduler (`feed::embargo`) decides when to ask.

use super::{DomainError, PressReleases, record::stamp};
use crate::{
    proto::{Timestamp, v1::press_release::State},
    store::{Applied, Change, ChangeKind, Replacement},
};

/// Most embargoed releases published in one commit.
const PUBLISH_BATCH: usize = 256;

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

impl PressReleases {
    /// Publishes the embargoed releases whose time has come.
    pub async fn publish_due(&self, now: Timestamp) -> Result<Publishing, DomainError> {
        let due = self.store.embargoes_due(&now, PUBLISH_BATCH).await?;
        let mut changes = Vec::with_capacity(due.len());
        for id in &due {
            let Some(current) = self.store.get(id).await? else {
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
                source_fingerprint: None,
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
}

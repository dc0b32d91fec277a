//! `UpdatePressRelease`: the fields a mask names, changed on the revision
//! the caller's etag names, checked again, with the embargo settled anew.

use super::{
    DomainError, PressReleases, name, not_found,
    record::{settle_embargo, stamp},
    stale_etag, unexpected, update_mask, validate,
};
use crate::{
    proto::{
        now,
        v1::{PressRelease, UpdatePressReleaseRequest},
    },
    store::{Applied, Change, Rejected, Replacement},
};

impl PressReleases {
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
        let fixed = update_mask::fixed(request.update_mask.as_ref(), &patch);
        let current = self.current(&id, &patch.name).await?;
        if current.etag != patch.etag {
            return Err(stale_etag(&current));
        }

        let mut next = current.clone();
        update_mask::apply(&mut next, &patch, &paths);
        if fixed.contains(&"source") && patch.source != current.source {
            return Err(DomainError::invalid(
                "press_release.source",
                "cannot be changed; create a new press release instead",
            ));
        }
        let mut next =
            tokio::task::spawn_blocking(move || validate::check_content(&mut next).map(|()| next))
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
        let kind = settle_embargo(&current, &mut next, &now)?;
        stamp(&mut next, &id, now);
        let replacement = Replacement {
            id,
            expected_revision: current.revision,
            release: next,
            kind,
            source_fingerprint: None,
        };
        match self.writer.submit(Change::Replace(replacement)).await? {
            Ok(Applied::Committed { release, .. }) => Ok(release),
            Err(Rejected::Stale(latest)) => Err(stale_etag(&latest)),
            Err(Rejected::NotFound) => Err(not_found(&patch.name)),
            other => Err(unexpected(other)),
        }
    }
}

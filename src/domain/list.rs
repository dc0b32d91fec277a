//! `ListPressReleases`: published press releases, newest first, one page at
//! a time, with embargoed ones merged in for a publisher who asks.

use std::sync::Arc;

use super::{Caller, DomainError, PressReleases, filter, name, page_token};
use crate::{
    proto::v1::{ListPressReleasesRequest, ListPressReleasesResponse},
    store::ListPosition,
};

/// Default page size of `List`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size of `List`; larger requests are clamped.
pub const MAX_PAGE_SIZE: usize = 500;

impl PressReleases {
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
        let mut page = {
            let mut page = store.list(&query, after.as_ref(), page_size + 1).await?;
            if include_embargoed {
                // Pending embargoes are few: merge them in by position.
                for release in store.embargoed().await? {
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
            page
        };
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
}

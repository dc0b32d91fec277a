//! The restarted server read back against the model: every acknowledged
//! write byte for byte, and every write in flight at the kill landed whole
//! or not at all.

use std::collections::{BTreeMap, HashMap};

use pressroom::proto::v1::{
    CreatePressReleaseRequest, GetPressReleaseRequest, PressRelease, press_release::State,
    press_release_service_client::PressReleaseServiceClient,
};
use tonic::{Code, transport::Channel};

use super::{
    Error, InFlight, Model, Rng, StoreSnapshot, Tracked, bytes, content_of, is_tombstone_of,
};
use crate::helpers::list_all;

/// Checks the restarted server against the model and the store snapshot,
/// settles every write that was in flight (landed whole, or not at all),
/// and returns how many of those landed.
pub(super) async fn verify(
    model: &mut Model,
    snapshot: &StoreSnapshot,
    client: &mut PressReleaseServiceClient<Channel>,
    rng: &mut Rng,
) -> Result<u64, Error> {
    let mut landed = 0;
    let records = &snapshot.records;
    let mut by_headline: HashMap<&str, Vec<&PressRelease>> = HashMap::new();
    for record in records.values() {
        by_headline
            .entry(record.headline.as_str())
            .or_default()
            .push(record);
    }
    let find = |headline: &str| -> Result<Option<PressRelease>, Error> {
        match by_headline.get(headline).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some((*one).clone())),
            Some(many) => Err(format!("{} releases have headline {headline:?}", many.len()).into()),
        }
    };

    for (name, tracked) in &mut model.releases {
        let stored = records
            .get(name)
            .ok_or_else(|| format!("acknowledged {name} is gone"))?;
        if bytes(stored) == bytes(&tracked.acked) {
            tracked.in_flight = None;
            continue;
        }
        let acked = &tracked.acked;
        let in_flight_landed = match &tracked.in_flight {
            None => false,
            Some(InFlight::Update { headline, body }) => {
                let expected = PressRelease {
                    headline: headline.clone(),
                    body: body.clone(),
                    ..acked.clone()
                };
                stored.revision == acked.revision + 1 && content_of(stored) == content_of(&expected)
            }
            Some(InFlight::Withdraw { reason }) => is_tombstone_of(stored, acked, reason),
        };
        if !in_flight_landed {
            return Err(format!(
                "{name} is not as acknowledged (nor as the change in flight would make it):\n \
                 acknowledged {acked:?}\n stored {stored:?}"
            )
            .into());
        }
        landed += 1;
        model.touched.insert(name.clone());
        tracked.acked = stored.clone();
        tracked.in_flight = None;
    }

    for (headline, pending) in std::mem::take(&mut model.pending_creates) {
        let found = find(&headline)?;
        if let Some(found) = &found {
            if content_of(found) != content_of(&pending.sent) || found.revision != 1 {
                return Err(format!(
                    "a create in flight landed half-written: sent {:?}, stored {found:?}",
                    pending.sent
                )
                .into());
            }
            landed += 1;
        }
        // Retried with its request id, it is created once: the one that
        // landed is returned, or it is created now.
        let retry = CreatePressReleaseRequest {
            press_release: Some(pending.sent.clone()),
            request_id: pending.request_id,
        };
        let release = client.create_press_release(retry).await?.into_inner();
        match &found {
            Some(found) if bytes(found) != bytes(&release) => {
                return Err(format!(
                    "the retried create returned {release:?}, not the one that landed: {found:?}"
                )
                .into());
            }
            None if content_of(&release) != content_of(&pending.sent) => {
                return Err(format!("the retried create returned {release:?}").into());
            }
            _ => {}
        }
        model.touched.insert(release.name.clone());
        model.releases.insert(
            release.name.clone(),
            Tracked {
                owner: pending.owner,
                acked: release,
                in_flight: None,
            },
        );
    }

    for (tag, (owner, items)) in std::mem::take(&mut model.pending_imports) {
        let mut found = Vec::new();
        for item in &items {
            if let Some(record) = find(&item.headline)? {
                if content_of(&record) != content_of(item) {
                    return Err(format!(
                        "an import item landed half-written: sent {item:?}, stored {record:?}"
                    )
                    .into());
                }
                found.push(record);
            }
        }
        if !found.is_empty() && found.len() != items.len() {
            return Err(format!(
                "import {tag} in flight landed in part: {} of {} items",
                found.len(),
                items.len()
            )
            .into());
        }
        landed += u64::from(!found.is_empty());
        for record in found {
            model.touched.insert(record.name.clone());
            model.releases.insert(
                record.name.clone(),
                Tracked {
                    owner,
                    acked: record,
                    in_flight: None,
                },
            );
        }
    }

    for (owner, item) in std::mem::take(&mut model.imported) {
        let record = find(&item.headline)?
            .ok_or_else(|| format!("acknowledged import item {:?} is gone", item.headline))?;
        if content_of(&record) != content_of(&item) || record.revision != 1 {
            return Err(format!("import item sent as {item:?} is stored as {record:?}").into());
        }
        model.touched.insert(record.name.clone());
        model.releases.insert(
            record.name.clone(),
            Tracked {
                owner,
                acked: record,
                in_flight: None,
            },
        );
    }

    let unknown: Vec<&String> = records
        .keys()
        .filter(|name| !model.releases.contains_key(*name))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("the store holds releases nobody sent: {unknown:?}").into());
    }

    // Through the API: List reads every published release, each exactly as
    // acknowledged; Get reads back what changed and a sample of the rest.
    let listed: BTreeMap<String, PressRelease> = list_all(client)
        .await
        .map_err(|s| format!("List after the restart: {s:?}"))?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let live: BTreeMap<&String, &PressRelease> = model
        .releases
        .iter()
        .filter(|(_, t)| t.acked.state() != State::Withdrawn)
        .map(|(name, t)| (name, &t.acked))
        .collect();
    if listed.len() != live.len() {
        return Err(format!(
            "List returns {} releases; {} are known and not withdrawn",
            listed.len(),
            live.len()
        )
        .into());
    }
    for (name, acked) in &live {
        let listed = listed
            .get(*name)
            .ok_or_else(|| format!("List misses {name}"))?;
        if bytes(listed) != bytes(acked) {
            return Err(format!("List returns {listed:?}, acknowledged was {acked:?}").into());
        }
    }
    let mut to_get = std::mem::take(&mut model.touched);
    let names: Vec<&String> = model.releases.keys().collect();
    for _ in 0..20.min(names.len()) {
        let at = rng.below(names.len() as u64) as usize;
        to_get.insert(names[at].clone());
    }
    for name in to_get {
        let Some(tracked) = model.releases.get(&name) else {
            continue;
        };
        let got = client
            .get_press_release(GetPressReleaseRequest { name: name.clone() })
            .await;
        match (got, tracked.acked.state()) {
            (Ok(release), state) if state != State::Withdrawn => {
                if bytes(release.get_ref()) != bytes(&tracked.acked) {
                    return Err(format!(
                        "Get returns {:?}, acknowledged was {:?}",
                        release.get_ref(),
                        tracked.acked
                    )
                    .into());
                }
            }
            (Err(status), State::Withdrawn) if status.code() == Code::NotFound => {}
            (got, _) => {
                return Err(
                    format!("Get {name} returned {got:?}; expected {:?}", tracked.acked).into(),
                );
            }
        }
    }
    Ok(landed)
}

//! The writers: each creates, updates, withdraws and imports its own
//! releases until the server is killed, noting in the model what it sent
//! and what was acknowledged.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use pressroom::proto::v1::{
    CreatePressReleaseRequest, Dateline, DeletePressReleaseRequest, ImportPressReleasesRequest,
    PressRelease, UpdatePressReleaseRequest,
    press_release::{BodyFormat, State},
    press_release_service_client::PressReleaseServiceClient,
};
use tonic::{Status, transport::Channel};

use super::{
    CALL_TIMEOUT, CHANNELS, Error, InFlight, Model, PendingCreate, Rng, Tracked, connect,
    content_of, is_tombstone_of,
};

/// Countries of the writers' datelines.
const COUNTRIES: [&str; 4] = ["US", "DE", "AZ", "JP"];
/// Words the writers' releases are made of.
const WORDS: [&str; 12] = [
    "acme",
    "solar",
    "plant",
    "quarter",
    "record",
    "shares",
    "capacity",
    "today",
    "announced",
    "million",
    "panels",
    "growth",
];

/// One writer's task.
pub(super) struct Writer {
    pub(super) index: usize,
    pub(super) cycle: u64,
    pub(super) rng: Rng,
    pub(super) addr: SocketAddr,
    pub(super) model: Arc<Mutex<Model>>,
    pub(super) killed: Arc<AtomicBool>,
}

/// Why a write did not go through.
enum WriteError {
    /// No answer, or an error status: it may or may not have been applied.
    Unanswered(Status),
    /// An answer that contradicts what was sent: always a failure.
    Wrong(String),
}

impl From<Status> for WriteError {
    fn from(status: Status) -> Self {
        WriteError::Unanswered(status)
    }
}

impl Writer {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn create(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let sent = content(&mut self.rng, tag);
        let request_id = format!("crash-{tag}-{:016x}", self.rng.next());
        self.model().pending_creates.insert(
            sent.headline.clone(),
            PendingCreate {
                owner: self.index,
                request_id: request_id.clone(),
                sent: sent.clone(),
            },
        );
        let request = CreatePressReleaseRequest {
            press_release: Some(sent.clone()),
            request_id,
        };
        let release = answer(client.create_press_release(request)).await?;
        if content_of(&release) != content_of(&sent) || release.revision != 1 {
            return Err(WriteError::Wrong(format!(
                "create answered with other content: sent {sent:?}, got {release:?}"
            )));
        }
        let mut model = self.model();
        model.pending_creates.remove(&sent.headline);
        model.touched.insert(release.name.clone());
        model.releases.insert(
            release.name.clone(),
            Tracked {
                owner: self.index,
                acked: release,
                in_flight: None,
            },
        );
        Ok(())
    }

    /// One of this writer's releases that is not withdrawn.
    fn pick(&mut self) -> Option<PressRelease> {
        let mine: Vec<PressRelease> = self
            .model()
            .releases
            .values()
            .filter(|t| t.owner == self.index && t.acked.state() != State::Withdrawn)
            .map(|t| t.acked.clone())
            .collect();
        let at = self.rng.below(mine.len() as u64) as usize;
        mine.into_iter().nth(at)
    }

    /// Records the server's answer to a change of a tracked release.
    fn acknowledged(&self, release: PressRelease) {
        let mut model = self.model();
        model.touched.insert(release.name.clone());
        if let Some(tracked) = model.releases.get_mut(&release.name) {
            tracked.acked = release;
            tracked.in_flight = None;
        }
    }

    fn set_in_flight(&self, name: &str, change: Option<InFlight>) {
        if let Some(tracked) = self.model().releases.get_mut(name) {
            tracked.in_flight = change;
        }
    }

    async fn update(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let Some(current) = self.pick() else {
            return self.create(client, tag).await;
        };
        let headline = format!("Crash test {tag} (updated)");
        let body = format!("{tag}: {}", words(&mut self.rng));
        self.set_in_flight(
            &current.name,
            Some(InFlight::Update {
                headline: headline.clone(),
                body: body.clone(),
            }),
        );
        let mut request = UpdatePressReleaseRequest {
            press_release: Some(PressRelease {
                name: current.name.clone(),
                etag: current.etag.clone(),
                headline: headline.clone(),
                body: body.clone(),
                ..Default::default()
            }),
            update_mask: Some(Default::default()),
        };
        if let Some(mask) = request.update_mask.as_mut() {
            mask.paths = vec!["headline".into(), "body".into()];
        }
        let release = answer(client.update_press_release(request)).await?;
        let expected = PressRelease {
            headline,
            body,
            ..current.clone()
        };
        if content_of(&release) != content_of(&expected) || release.revision != current.revision + 1
        {
            return Err(WriteError::Wrong(format!(
                "update answered with other content: expected {expected:?}, got {release:?}"
            )));
        }
        self.acknowledged(release);
        Ok(())
    }

    async fn withdraw(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let Some(current) = self.pick() else {
            return self.create(client, tag).await;
        };
        let reason = format!("withdrawn by {tag}");
        self.set_in_flight(
            &current.name,
            Some(InFlight::Withdraw {
                reason: reason.clone(),
            }),
        );
        let request = DeletePressReleaseRequest {
            name: current.name.clone(),
            etag: current.etag.clone(),
            reason: reason.clone(),
        };
        let tombstone = answer(client.delete_press_release(request)).await?;
        if !is_tombstone_of(&tombstone, &current, &reason) {
            return Err(WriteError::Wrong(format!(
                "withdrawal answered with {tombstone:?}"
            )));
        }
        self.acknowledged(tombstone);
        Ok(())
    }

    async fn import(
        &mut self,
        client: &mut PressReleaseServiceClient<Channel>,
        tag: &str,
    ) -> Result<(), WriteError> {
        let count = self.rng.range(2, 20);
        let items: Vec<PressRelease> = (0..count)
            .map(|i| content(&mut self.rng, &format!("{tag}-i{i}")))
            .collect();
        self.model()
            .pending_imports
            .insert(tag.to_string(), (self.index, items.clone()));
        let requests: Vec<ImportPressReleasesRequest> = items
            .iter()
            .map(|item| ImportPressReleasesRequest {
                press_release: Some(item.clone()),
                request_id: String::new(),
            })
            .collect();
        let summary = answer(client.import_press_releases(tokio_stream::iter(requests))).await?;
        if summary.created != count as i64 || !summary.failed.is_empty() {
            return Err(WriteError::Wrong(format!(
                "import of {count} answered with {summary:?}"
            )));
        }
        let mut model = self.model();
        model.pending_imports.remove(tag);
        let owner = self.index;
        model
            .imported
            .extend(items.into_iter().map(|item| (owner, item)));
        Ok(())
    }
}

/// Writes until the server is killed; returns how many writes were
/// acknowledged. Fails on an error before the kill, or on an answer that
/// contradicts what was sent.
pub(super) async fn write_until_killed(mut writer: Writer) -> Result<u64, Error> {
    let channel = match connect(writer.addr).await {
        Ok(channel) => channel,
        // A kill a few ms after the start can come before a busy machine
        // has connected the writers: nothing was sent.
        Err(_) if writer.killed.load(Ordering::SeqCst) => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut client = PressReleaseServiceClient::new(channel);
    let mut acknowledged = 0;
    for n in 0.. {
        let tag = format!("c{}-w{}-{n}", writer.cycle, writer.index);
        let outcome = match writer.rng.below(100) {
            0..45 => writer.create(&mut client, &tag).await,
            45..85 => writer.update(&mut client, &tag).await,
            85..93 => writer.withdraw(&mut client, &tag).await,
            _ => writer.import(&mut client, &tag).await,
        };
        match outcome {
            Ok(()) => acknowledged += 1,
            Err(WriteError::Wrong(message)) => {
                return Err(format!("writer {}: {message}", writer.index).into());
            }
            Err(WriteError::Unanswered(_)) if writer.killed.load(Ordering::SeqCst) => break,
            Err(WriteError::Unanswered(status)) => {
                return Err(format!("writer {}: {status:?}", writer.index).into());
            }
        }
    }
    Ok(acknowledged)
}

/// The answer to a call, or the status; no answer in time counts as none.
async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("no answer in time")),
    }
}

/// A press release to create, unique by its headline.
fn content(rng: &mut Rng, tag: &str) -> PressRelease {
    let channels = CHANNELS
        .iter()
        .filter(|_| rng.chance(50))
        .map(|c| c.to_string())
        .collect();
    let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
    PressRelease {
        headline: format!("Crash test {tag}"),
        body: format!("{tag}: {}", words(rng)),
        body_format: BodyFormat::PlainText as i32,
        language: "en".into(),
        channels,
        keywords: vec![tag.to_string()],
        dateline: Some(Dateline {
            country_code: country.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Some text: 20 to 800 words.
fn words(rng: &mut Rng) -> String {
    let count = rng.range(20, 800);
    let mut text = String::new();
    for i in 0..count {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    text
}

//! Measuring delivery, shared by `fanout` and `alerts`: watchers that note
//! when each event arrives, writes at a fixed rate (an open loop) that note
//! when each was acknowledged, and this process's memory sampled through a
//! phase. The figures themselves are each scenario's to make.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use pressroom::proto::v1::{
    CreatePressReleaseRequest, PressRelease, WatchPressReleasesResponse,
    watch_press_releases_response::Kind,
};
use tonic::{Streaming, transport::Channel};

use crate::{
    BenchResult,
    measure::{per_second, rss_bytes},
    server,
};

/// What one live watcher received.
pub struct Watcher {
    /// When the times in `received` count from.
    pub epoch: Instant,
    /// Item numbers and when they arrived (µs since `epoch`), kept small:
    /// this is the benchmark's own memory.
    pub received: Mutex<Vec<(u32, u32)>>,
    pub count: AtomicUsize,
    /// Has had its first progress (it is following).
    pub ready: AtomicBool,
}

impl Watcher {
    /// A watcher whose times count from `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            received: Mutex::default(),
            count: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Forgets what was received, to count a new phase.
    pub fn reset(&self, room: usize) {
        let mut received = lock(&self.received);
        received.clear();
        received.reserve(room);
        drop(received);
        self.count.store(0, Ordering::Release);
    }
}

/// Reads a watch stream, noting when each event arrives.
pub async fn follow(mut stream: Streaming<WatchPressReleasesResponse>, watcher: Arc<Watcher>) {
    while let Ok(Some(message)) = stream.message().await {
        let at = Instant::now();
        match message.kind {
            Some(Kind::Event(event)) => {
                if let Some(item) = event.press_release.as_ref().and_then(item_number) {
                    let micros = at.saturating_duration_since(watcher.epoch).as_micros();
                    lock(&watcher.received).push((item, micros as u32));
                    watcher.count.fetch_add(1, Ordering::Release);
                }
            }
            Some(Kind::Progress(_)) => watcher.ready.store(true, Ordering::Release),
            None => {}
        }
    }
}

/// The generator's number of a release (the end of its source item id).
pub fn item_number(release: &PressRelease) -> Option<u32> {
    release
        .source
        .as_ref()?
        .item_id
        .rsplit('-')
        .next()?
        .parse()
        .ok()
}

/// Locks `mutex`, also when a holder that panicked poisoned it.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a run of writes at a fixed rate did.
pub struct Written {
    /// When each release written was acknowledged, by item number.
    pub oks: HashMap<u32, Instant>,
    pub written: usize,
    pub errors: usize,
    pub started: Instant,
}

impl Written {
    /// The rate achieved: writes per second until the last OK.
    pub fn achieved(&self) -> f64 {
        let last_ok = self.oks.values().max().copied().unwrap_or(self.started);
        per_second(
            self.written,
            last_ok.saturating_duration_since(self.started),
        )
    }
}

/// Writes `releases` at `rate`, each its own call started on schedule (an
/// open loop: a slow write does not slow the rate); returns when every
/// call has been answered.
pub async fn write_at_rate(
    channels: &[Channel],
    releases: Vec<PressRelease>,
    rate: f64,
) -> BenchResult<Written> {
    let oks: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut writers = Vec::with_capacity(releases.len());
    for (k, release) in releases.into_iter().enumerate() {
        let due = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let mut client = server::client(channels[k % channels.len()].clone());
        let oks = Arc::clone(&oks);
        writers.push(tokio::spawn(async move {
            let item = item_number(&release);
            let written = client
                .create_press_release(CreatePressReleaseRequest {
                    press_release: Some(release),
                    request_id: String::new(),
                })
                .await;
            match (written, item) {
                (Ok(_), Some(item)) => {
                    lock(&oks).insert(item, Instant::now());
                    true
                }
                _ => false,
            }
        }));
    }
    let mut written = 0;
    let mut errors = 0;
    for writer in writers {
        if writer.await? {
            written += 1;
        } else {
            errors += 1;
        }
    }
    let oks = std::mem::take(&mut *lock(&oks));
    Ok(Written {
        oks,
        written,
        errors,
        started,
    })
}

/// Samples this process's memory every 100 ms until told to stop.
pub async fn sample_rss(sampling: Arc<AtomicBool>) -> Vec<u64> {
    let mut samples = Vec::new();
    while sampling.load(Ordering::Acquire) {
        if let Some(rss) = rss_bytes() {
            samples.push(rss);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(rss) = rss_bytes() {
        samples.push(rss);
    }
    samples
}

/// The memory at the middle and at the end of a series of samples.
pub fn halves(samples: &[u64]) -> (u64, u64) {
    let mid = samples.get(samples.len() / 2).copied().unwrap_or(0);
    let end = samples.last().copied().unwrap_or(0);
    (mid, end)
}

/// Whether memory stayed flat from `mid` to `end`: it grew by at most
/// 16 MiB or 5%, whichever is more.
pub fn is_flat(mid: u64, end: u64) -> bool {
    let allowed = (16 * 1024 * 1024).max(mid / 20);
    end <= mid + allowed
}

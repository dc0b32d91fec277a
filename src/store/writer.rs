//! The one writer. Every change goes through this task: it takes everything
//! pending (up to a batch limit), applies it as one atomic batch and syncs
//! it once (the engine decides where: sled on the blocking pool, PostgreSQL
//! in one transaction whose `COMMIT` is the sync), and only then answers
//! each caller and
//! moves the durable head that change-log readers wait on. While a batch is
//! being synced the next one gathers and is applied (pipelining: the sync's
//! wait on the disk overlaps the next batch's work), so concurrent callers
//! share syncs (group commit); batches are still synced and answered in
//! order, one sync at a time, and nothing of a batch is answered before its
//! sync has returned.
//!
//! Readers are only woken (a `watch` of the head); they read the log at their
//! own pace, so no reader can hold up the writer or another reader.

use std::sync::Arc;

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use super::{Change, ChangeResult, Store, StoreError, StoreFuture};

/// Submissions waiting for the writer; a full queue makes callers wait.
const QUEUE_DEPTH: usize = 4096;

/// Work for the writer.
enum Submission {
    /// Changes to commit.
    Changes {
        changes: Vec<Change>,
        reply: oneshot::Sender<Result<Vec<ChangeResult>, StoreError>>,
    },
    /// Work that must see the store with no commit under way (a backup); it
    /// is given the durable head.
    Exclusive(Box<dyn FnOnce(u64) -> BoxFuture<'static, ()> + Send>),
}

/// A handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Submission>,
    durable_head: watch::Receiver<u64>,
}

impl Writer {
    /// Starts the writer on `store`. It commits at most `max_batch` changes
    /// at a time (a single larger submission is still committed whole). Once
    /// `stop` is cancelled it refuses new submissions, commits those already
    /// queued and ends.
    pub fn start(
        store: Arc<dyn Store>,
        max_batch: usize,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (head_tx, durable_head) = watch::channel(store.log_head());
        let head_tx = Arc::new(head_tx);
        if let Some(followed) = store.followed_head() {
            tokio::spawn(forward(followed, Arc::clone(&head_tx), stop.clone()));
        }
        let task = tokio::spawn(run(store, receiver, head_tx, max_batch.max(1), stop));
        (
            Self {
                queue,
                durable_head,
            },
            task,
        )
    }

    /// Commits one change durably and returns its outcome.
    pub async fn submit(&self, change: Change) -> Result<ChangeResult, StoreError> {
        let mut results = self.submit_all(vec![change]).await?;
        results.pop().ok_or(StoreError::Closed)
    }

    /// Commits changes together, in order, durably; one outcome per change.
    pub async fn submit_all(&self, changes: Vec<Change>) -> Result<Vec<ChangeResult>, StoreError> {
        self.enqueue_all(changes).await?.await
    }

    /// Queues changes to be committed together, and returns once they are
    /// queued: submissions are committed in the order they were queued. The
    /// future returned answers once they are durable, one outcome per
    /// change. A caller with several batches to commit in order queues the
    /// next while the one before is still being committed.
    pub async fn enqueue_all(
        &self,
        changes: Vec<Change>,
    ) -> Result<impl Future<Output = Result<Vec<ChangeResult>, StoreError>> + use<>, StoreError>
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Submission::Changes { changes, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(async move { answer.await.map_err(|_| StoreError::Closed)? })
    }

    /// Runs `work` between two commits, so that it sees the store exactly
    /// at the durable head it is given; writes wait meanwhile (they queue,
    /// they do not fail) until the future it returns is done.
    pub async fn exclusive<T, Work>(
        &self,
        work: impl FnOnce(u64) -> Work + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Work: Future<Output = T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn FnOnce(u64) -> BoxFuture<'static, ()> + Send> = Box::new(move |head| {
            Box::pin(async move {
                let _ = reply.send(work(head).await);
            })
        });
        self.queue
            .send(Submission::Exclusive(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// The sequence number of the last change-log entry that is on disk;
    /// changes when a commit has been flushed.
    pub fn durable_head(&self) -> watch::Receiver<u64> {
        self.durable_head.clone()
    }
}

/// Moves the durable head with a shared log's head as the engine follows
/// it (commits of other replicas), until `stop`.
async fn forward(
    mut followed: watch::Receiver<u64>,
    head: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
) {
    loop {
        let seen = *followed.borrow_and_update();
        advance(&head, seen);
        tokio::select! {
            changed = followed.changed() => if changed.is_err() { break },
            () = stop.cancelled() => break,
        }
    }
}

/// Moves the durable head forward to `to` (never back).
fn advance(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|durable| {
        let moved = to > *durable;
        *durable = (*durable).max(to);
        moved
    });
}

async fn run(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Submission>,
    head: Arc<watch::Sender<u64>>,
    max_batch: usize,
    stop: CancellationToken,
) {
    let mut stopping = false;
    // Exclusive work that arrived while a batch was being gathered; it runs
    // right after that batch, keeping arrival order.
    let mut deferred: Option<Submission> = None;
    // The batch applied last, while it is being synced.
    let mut syncing: Option<Syncing> = None;
    loop {
        let first = match deferred.take() {
            Some(submission) => Some(submission),
            None => match receiver.try_recv() {
                Ok(submission) => Some(submission),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing to overlap the sync with: finish it first.
                    if let Some(batch) = syncing.take() {
                        batch.finish(&head).await;
                        continue;
                    }
                    tokio::select! {
                        submission = receiver.recv() => submission,
                        () = stop.cancelled(), if !stopping => {
                            // No new submissions; what is queued is still committed.
                            stopping = true;
                            receiver.close();
                            continue;
                        }
                    }
                }
            },
        };
        let (mut batch, mut size) = match first {
            None => break,
            Some(Submission::Exclusive(job)) => {
                if let Some(batch) = syncing.take() {
                    batch.finish(&head).await;
                }
                let durable = *head.borrow();
                job(durable).await;
                continue;
            }
            Some(Submission::Changes { changes, reply }) => {
                let size = changes.len();
                (vec![(changes, reply)], size)
            }
        };
        while size < max_batch {
            match receiver.try_recv() {
                Ok(Submission::Changes { changes, reply }) => {
                    size += changes.len();
                    batch.push((changes, reply));
                }
                Ok(exclusive) => {
                    deferred = Some(exclusive);
                    break;
                }
                Err(_) => break,
            }
        }
        let applied = apply(&store, batch).await;
        // Acknowledged in order: the batch before is synced first.
        if let Some(batch) = syncing.take() {
            batch.finish(&head).await;
        }
        syncing = applied.map(|applied| applied.sync(&store));
    }
    if let Some(batch) = syncing.take() {
        batch.finish(&head).await;
    }
    tracing::debug!("writer stopped");
}

/// Changes of one caller and where to send their outcomes.
type Pending = (
    Vec<Change>,
    oneshot::Sender<Result<Vec<ChangeResult>, StoreError>>,
);

/// A reply channel and how many outcomes it takes.
type Reply = (
    usize,
    oneshot::Sender<Result<Vec<ChangeResult>, StoreError>>,
);

/// A batch applied, not yet durable.
struct AppliedBatch {
    results: Vec<ChangeResult>,
    replies: Vec<Reply>,
    /// The log head after it.
    head: u64,
}

/// A batch being synced.
struct Syncing {
    applied: AppliedBatch,
    sync: StoreFuture<()>,
}

/// Applies a batch; on failure its callers are told and `None` is
/// returned.
async fn apply(store: &Arc<dyn Store>, batch: Vec<Pending>) -> Option<AppliedBatch> {
    let mut changes = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());
    for (submitted, reply) in batch {
        replies.push((submitted.len(), reply));
        changes.extend(submitted);
    }
    let count = changes.len();
    metrics::histogram!("pressroom_write_batch_size").record(count as f64);
    // The engine's clock sets the commit time (the database's, for a
    // shared one).
    match store.apply(changes, None).await {
        Ok((results, head)) => Some(AppliedBatch {
            results,
            replies,
            head,
        }),
        Err(error) => {
            fail(replies, &error, count);
            None
        }
    }
}

impl AppliedBatch {
    /// Starts making the batch durable.
    fn sync(self, store: &Arc<dyn Store>) -> Syncing {
        Syncing {
            sync: store.sync(self.head),
            applied: self,
        }
    }
}

impl Syncing {
    /// Waits for the sync, then answers the callers and moves the durable
    /// head (or tells them it failed).
    async fn finish(self, durable_head: &watch::Sender<u64>) {
        let AppliedBatch {
            results,
            replies,
            head,
        } = self.applied;
        match self.sync.await {
            Ok(()) => {
                tracing::trace!(changes = results.len(), "batch committed");
                let mut results = results.into_iter();
                for (len, reply) in replies {
                    // A caller that went away no longer wants its answer.
                    let _ = reply.send(Ok(results.by_ref().take(len).collect()));
                }
                advance(durable_head, head);
            }
            Err(error) => fail(replies, &error, results.len()),
        }
    }
}

/// Tells every caller of a batch that it failed.
fn fail(replies: Vec<Reply>, error: &StoreError, changes: usize) {
    tracing::error!(error = %crate::telemetry::chain(error), changes, "commit failed");
    for (_, reply) in replies {
        let _ = reply.send(Err(error.clone()));
    }
}

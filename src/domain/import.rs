//! `ImportPressReleases`: the import pipeline. Items are checked in large
//! batches on the blocking pool while the batch before is committed, and
//! committed in the stream's order; one bad item never fails the others.

use std::sync::Arc;

use super::{
    DomainError, PressReleases,
    create::{create_rejected, prepare_import},
    versions,
};
use crate::{
    proto::v1::ImportPressReleasesRequest,
    store::{Applied, Change, NewRelease, Rejected, Writer},
};

/// Items of an import committed together.
pub const IMPORT_BATCH: usize = 1_000;

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Press releases created.
    pub created: i64,
    /// Items already stored.
    pub duplicates: i64,
    /// Items that were a later version of a stored source and updated it.
    pub updated: i64,
    /// Rejected items: their index in the stream and why.
    pub failed: Vec<(i64, DomainError)>,
}

impl PressReleases {
    /// Imports a stream of items, committing them in large batches; one bad
    /// item never fails the others.
    pub async fn import(
        &self,
        mut items: impl tokio_stream::Stream<Item = ImportPressReleasesRequest> + Unpin,
    ) -> Result<ImportSummary, DomainError> {
        use tokio_stream::StreamExt as _;
        // Batches are checked on the blocking pool while the ones before are
        // committed; each is queued for the writer once the one before is
        // queued, so commits keep the stream's order, and the writer can
        // apply one while it syncs the one before. At most three are in
        // flight.
        let slots = Arc::new(tokio::sync::Semaphore::new(3));
        let mut queued: Option<tokio::sync::oneshot::Receiver<()>> = None;
        let mut superseded: Option<tokio::sync::oneshot::Receiver<()>> = None;
        let mut batch: Vec<(i64, ImportPressReleasesRequest)> = Vec::with_capacity(IMPORT_BATCH);
        let mut tail: Option<ImportTask> = None;
        let mut index = 0i64;
        loop {
            let item = items.next().await;
            let end = item.is_none();
            if let Some(item) = item {
                batch.push((index, item));
                index += 1;
            }
            if batch.len() >= IMPORT_BATCH || (end && !batch.is_empty()) {
                let slot = Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .map_err(|e| DomainError::Internal(Box::new(e)))?;
                let previous = tail.take();
                let previous_queued = queued.take();
                let (now_queued, queued_signal) = tokio::sync::oneshot::channel();
                queued = Some(queued_signal);
                let superseded_before = superseded.take();
                let (now_superseded, superseded_signal) = tokio::sync::oneshot::channel();
                superseded = Some(superseded_signal);
                let writer = self.writer.clone();
                let checking = std::mem::take(&mut batch);
                tail = Some(tokio::spawn(async move {
                    let _slot = slot;
                    let checked = tokio::task::spawn_blocking(move || {
                        checking
                            .into_iter()
                            .map(|(index, item)| (index, prepare_import(item)))
                            .collect::<Vec<_>>()
                    })
                    .await
                    .map_err(DomainError::from_join)?;
                    if let Some(previous_queued) = previous_queued {
                        // Dropped unsent if the batch before failed; the
                        // order holds either way.
                        let _ = previous_queued.await;
                    }
                    let order = Order {
                        queued: now_queued,
                        superseded_before,
                        superseded: now_superseded,
                    };
                    let committed = commit_import(&writer, checked, order).await;
                    let mut summary = match previous {
                        Some(previous) => join_import(previous).await?,
                        None => ImportSummary::default(),
                    };
                    summary.add(committed?);
                    Ok(summary)
                }));
            }
            if end {
                break;
            }
        }
        let mut summary = match tail {
            Some(tail) => join_import(tail).await?,
            None => ImportSummary::default(),
        };
        summary.failed.sort_by_key(|(index, _)| *index);
        Ok(summary)
    }
}

impl ImportSummary {
    fn add(&mut self, other: ImportSummary) {
        self.created += other.created;
        self.duplicates += other.duplicates;
        self.updated += other.updated;
        self.failed.extend(other.failed);
    }
}

/// A batch of an import being checked and committed.
type ImportTask = tokio::task::JoinHandle<Result<ImportSummary, DomainError>>;

async fn join_import(task: ImportTask) -> Result<ImportSummary, DomainError> {
    task.await.map_err(DomainError::from_join)?
}

/// How a batch keeps its place in the stream's order: it says when its
/// creates are queued for the writer (`queued`, which lets the next batch
/// queue its own), and settles later versions of stored sources only after
/// the batch before has (`superseded_before`), saying so on `superseded`.
struct Order {
    queued: tokio::sync::oneshot::Sender<()>,
    superseded_before: Option<tokio::sync::oneshot::Receiver<()>>,
    superseded: tokio::sync::oneshot::Sender<()>,
}

/// Commits the items of a batch that passed their checks, in one submission
/// (then the later versions of stored sources among them), in the stream's
/// order (see [`Order`]).
async fn commit_import(
    writer: &Writer,
    checked: Vec<(i64, Result<NewRelease, DomainError>)>,
    order: Order,
) -> Result<ImportSummary, DomainError> {
    let queued = order.queued;
    let mut summary = ImportSummary::default();
    let mut indexes = Vec::with_capacity(checked.len());
    let mut changes = Vec::with_capacity(checked.len());
    for (index, new) in checked {
        match new {
            Ok(new) => {
                let later = versions::may_supersede(&new).then(|| new.clone());
                indexes.push((index, later));
                changes.push(Change::Create(new));
            }
            Err(error) => summary.failed.push((index, error)),
        }
    }
    if changes.is_empty() {
        let _ = queued.send(());
        if let Some(before) = order.superseded_before {
            let _ = before.await;
        }
        let _ = order.superseded.send(());
        return Ok(summary);
    }
    let committed = writer.enqueue_all(changes).await?;
    let _ = queued.send(());
    let results = committed.await?;
    let mut later_versions = Vec::new();
    for ((index, later), result) in indexes.into_iter().zip(results) {
        match (result, later) {
            (Ok(Applied::Committed { .. }), _) => summary.created += 1,
            (Ok(Applied::Existing(_)), _) => summary.duplicates += 1,
            (Err(Rejected::SourceTaken(current)), Some(new)) => {
                later_versions.push((index, new, current));
            }
            (Err(rejected), _) => summary.failed.push((index, create_rejected(rejected))),
        }
    }
    // Later versions are settled in the stream's order too: after those of
    // the batches before.
    if let Some(before) = order.superseded_before {
        let _ = before.await;
    }
    let outcomes = versions::supersede_all(writer, later_versions).await;
    let _ = order.superseded.send(());
    for (index, outcome) in outcomes? {
        match outcome {
            Ok(versions::VersionOutcome::Updated(_)) => summary.updated += 1,
            Ok(versions::VersionOutcome::Older(_)) => summary.duplicates += 1,
            Err(error) => summary.failed.push((index, error)),
        }
    }
    Ok(summary)
}

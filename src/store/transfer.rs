//! Moving a whole store from one engine to another (`pressroom migrate`):
//! what an engine exports and another imports. Everything that makes the
//! store the same store travels: the store id, every record with its last
//! change-log entry, the change log itself with its commit times, and the
//! request ids and sources that keep creates idempotent. Indexes and counts
//! do not: the importing engine derives them from the records. Names,
//! revisions and etags are in the records, so a consumer's cursor and a
//! publisher's retry mean the same after the move.

use uuid::Uuid;

use crate::proto::{Timestamp, v1::PressRelease};

use super::LogEntry;

/// One piece of a store being moved.
#[derive(Clone, Debug, PartialEq)]
pub enum TransferItem {
    /// A release's current record and the sequence number of its last entry.
    Release {
        /// The release id.
        id: Uuid,
        /// The record (a tombstone for a withdrawn release).
        release: Box<PressRelease>,
        /// Its last change-log entry.
        last_seq: u64,
    },
    /// A change-log entry.
    Entry(LogEntry),
    /// A commit: when it was made, and its first entry.
    Commit {
        /// Its first sequence number.
        first_seq: u64,
        /// Its commit time.
        time: Timestamp,
    },
    /// A request id and the release it created.
    RequestId {
        /// The request id.
        request_id: String,
        /// The release it created.
        release_id: Uuid,
    },
    /// A source and the release that holds it.
    Source {
        /// `source.provider`.
        provider: String,
        /// `source.item_id`.
        item_id: String,
        /// The release that holds it.
        release_id: Uuid,
        /// The fingerprint of the content it was created with.
        fingerprint: Vec<u8>,
    },
}

/// The first bytes of a portable backup.
const MAGIC: &[u8] = b"PRESSROOM-PORTABLE\n";
/// Its layout version.
const VERSION: u32 = 1;

/// One item as a portable backup stores it (a prost message; `kind` says
/// which fields are in use).
#[derive(Clone, PartialEq, prost::Message)]
struct PortableItem {
    /// 1 release, 2 log entry, 3 commit, 4 request id, 5 source.
    #[prost(uint32, tag = "1")]
    kind: u32,
    #[prost(bytes = "vec", tag = "2")]
    release_id: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    release: Option<PressRelease>,
    #[prost(uint64, tag = "4")]
    seq: u64,
    #[prost(message, optional, tag = "5")]
    entry: Option<LogEntry>,
    #[prost(message, optional, tag = "6")]
    time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    text: String,
    #[prost(string, tag = "8")]
    item_id: String,
    #[prost(bytes = "vec", tag = "9")]
    fingerprint: Vec<u8>,
}

impl From<&TransferItem> for PortableItem {
    fn from(item: &TransferItem) -> Self {
        let mut out = Self::default();
        match item {
            TransferItem::Release {
                id,
                release,
                last_seq,
            } => {
                out.kind = 1;
                out.release_id = id.as_bytes().to_vec();
                out.release = Some((**release).clone());
                out.seq = *last_seq;
            }
            TransferItem::Entry(entry) => {
                out.kind = 2;
                out.entry = Some(entry.clone());
            }
            TransferItem::Commit { first_seq, time } => {
                out.kind = 3;
                out.seq = *first_seq;
                out.time = Some(*time);
            }
            TransferItem::RequestId {
                request_id,
                release_id,
            } => {
                out.kind = 4;
                out.text = request_id.clone();
                out.release_id = release_id.as_bytes().to_vec();
            }
            TransferItem::Source {
                provider,
                item_id,
                release_id,
                fingerprint,
            } => {
                out.kind = 5;
                out.text = provider.clone();
                out.item_id = item_id.clone();
                out.release_id = release_id.as_bytes().to_vec();
                out.fingerprint = fingerprint.clone();
            }
        }
        out
    }
}

impl TryFrom<PortableItem> for TransferItem {
    type Error = String;

    fn try_from(item: PortableItem) -> Result<Self, String> {
        let id = || Uuid::from_slice(&item.release_id).map_err(|_| "a bad release id".to_string());
        Ok(match item.kind {
            1 => TransferItem::Release {
                id: id()?,
                release: Box::new(item.release.clone().ok_or("a release without its record")?),
                last_seq: item.seq,
            },
            2 => TransferItem::Entry(item.entry.ok_or("a log item without its entry")?),
            3 => TransferItem::Commit {
                first_seq: item.seq,
                time: item.time.unwrap_or_default(),
            },
            4 => TransferItem::RequestId {
                release_id: id()?,
                request_id: item.text,
            },
            5 => TransferItem::Source {
                release_id: id()?,
                provider: item.text,
                item_id: item.item_id,
                fingerprint: item.fingerprint,
            },
            other => return Err(format!("an item of unknown kind {other}")),
        })
    }
}

/// Writes a portable backup: a store as [`TransferItem`]s, the format of
/// engines whose own storage is not a file (PostgreSQL). Layout: magic,
/// version, store id, position, then per item `1`, a 4-byte length and the
/// encoded item, then `0`, the item count and a SHA-256 of all before it.
pub struct PortableWriter<'a> {
    out: std::io::BufWriter<&'a mut (dyn std::io::Write + Send)>,
    hash: sha2::Sha256,
    info: super::BackupInfo,
}

impl<'a> PortableWriter<'a> {
    /// Starts a backup of store `store_id` at change-log `position`.
    pub fn new(
        out: &'a mut (dyn std::io::Write + Send),
        store_id: Uuid,
        position: u64,
    ) -> std::io::Result<Self> {
        let mut writer = Self {
            out: std::io::BufWriter::with_capacity(1 << 20, out),
            hash: sha2::Digest::new(),
            info: super::BackupInfo {
                store_id,
                position,
                entries: 0,
            },
        };
        writer.put(MAGIC)?;
        writer.put(&VERSION.to_le_bytes())?;
        writer.put(store_id.as_bytes())?;
        writer.put(&position.to_le_bytes())?;
        Ok(writer)
    }

    /// Adds an item.
    pub fn item(&mut self, item: &TransferItem) -> std::io::Result<()> {
        let bytes = prost::Message::encode_to_vec(&PortableItem::from(item));
        let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        self.put(&[1])?;
        self.put(&len.to_le_bytes())?;
        self.put(&bytes)?;
        self.info.entries += 1;
        Ok(())
    }

    /// Ends the backup with its count and checksum.
    pub fn finish(mut self) -> std::io::Result<super::BackupInfo> {
        self.put(&[0])?;
        let count = self.info.entries;
        self.put(&count.to_le_bytes())?;
        let digest = sha2::Digest::finalize(self.hash.clone());
        std::io::Write::write_all(&mut self.out, &digest)?;
        std::io::Write::flush(&mut self.out)?;
        Ok(self.info)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        sha2::Digest::update(&mut self.hash, bytes);
        std::io::Write::write_all(&mut self.out, bytes)
    }
}

/// Reads a portable backup back, item by item; the checksum is checked
/// when the end is reached, so a caller must treat the items as
/// provisional until [`next`](Self::next) has returned `Ok(None)`.
pub struct PortableReader<R> {
    input: R,
    hash: sha2::Sha256,
    /// The store id and position the backup holds.
    pub info: super::BackupInfo,
    done: bool,
}

impl<R: std::io::Read> PortableReader<R> {
    /// Reads the header; fails on anything that is not a portable backup.
    pub fn open(input: R) -> Result<Self, String> {
        let mut reader = Self {
            input,
            hash: sha2::Digest::new(),
            info: super::BackupInfo {
                store_id: Uuid::nil(),
                position: 0,
                entries: 0,
            },
            done: false,
        };
        let magic = reader.take(MAGIC.len())?;
        if magic != MAGIC {
            return Err("not a portable Pressroom backup (the PostgreSQL store's format)".into());
        }
        let version = u32::from_le_bytes(reader.array()?);
        if version != VERSION {
            return Err(format!(
                "portable backup version {version}; this build reads {VERSION}"
            ));
        }
        reader.info.store_id = Uuid::from_bytes(reader.array()?);
        reader.info.position = u64::from_le_bytes(reader.array()?);
        Ok(reader)
    }

    /// The next item; `Ok(None)` at the end, once the checksum matched.
    pub fn next_item(&mut self) -> Result<Option<TransferItem>, String> {
        if self.done {
            return Ok(None);
        }
        match self.array::<1>()? {
            [1] => {
                let len = u32::from_le_bytes(self.array()?) as usize;
                let bytes = self.take(len)?;
                let item: PortableItem =
                    prost::Message::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
                self.info.entries += 1;
                TransferItem::try_from(item).map(Some)
            }
            [0] => {
                let count = u64::from_le_bytes(self.array()?);
                let expected = sha2::Digest::finalize(self.hash.clone());
                let mut found = [0; 32];
                std::io::Read::read_exact(&mut self.input, &mut found)
                    .map_err(|_| "the backup is truncated".to_string())?;
                if found.as_slice() != expected.as_slice() || count != self.info.entries {
                    return Err("the backup is damaged (checksum mismatch)".into());
                }
                self.done = true;
                Ok(None)
            }
            _ => Err("the backup is damaged (bad item marker)".into()),
        }
    }

    fn take(&mut self, len: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0; len];
        std::io::Read::read_exact(&mut self.input, &mut buf)
            .map_err(|_| "the backup is truncated".to_string())?;
        sha2::Digest::update(&mut self.hash, &buf);
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        bytes
            .try_into()
            .map_err(|_| "the backup is truncated".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_backups_round_trip_and_catch_damage() -> Result<(), String> {
        let items = vec![
            TransferItem::Commit {
                first_seq: 1,
                time: Timestamp {
                    seconds: 5,
                    nanos: 6,
                },
            },
            TransferItem::Entry(LogEntry {
                seq: 1,
                ..Default::default()
            }),
            TransferItem::RequestId {
                request_id: "r".into(),
                release_id: Uuid::from_u128(7),
            },
            TransferItem::Release {
                id: Uuid::from_u128(7),
                release: Box::new(PressRelease {
                    headline: "h".into(),
                    ..Default::default()
                }),
                last_seq: 1,
            },
            TransferItem::Source {
                provider: "p".into(),
                item_id: "i".into(),
                release_id: Uuid::from_u128(7),
                fingerprint: vec![1, 2],
            },
        ];
        let mut bytes = Vec::new();
        let mut writer =
            PortableWriter::new(&mut bytes, Uuid::from_u128(9), 1).map_err(|e| e.to_string())?;
        for item in &items {
            writer.item(item).map_err(|e| e.to_string())?;
        }
        let info = writer.finish().map_err(|e| e.to_string())?;
        assert_eq!(
            (info.store_id, info.position, info.entries),
            (Uuid::from_u128(9), 1, 5)
        );
        let mut reader = PortableReader::open(bytes.as_slice())?;
        let mut read = Vec::new();
        while let Some(item) = reader.next_item()? {
            read.push(item);
        }
        assert_eq!(read, items);
        assert_eq!(reader.info, info);
        // Any flipped byte is found, at the latest at the end.
        for at in [MAGIC.len() + 8, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            let outcome = PortableReader::open(damaged.as_slice()).and_then(|mut reader| {
                while reader.next_item()?.is_some() {}
                Ok(())
            });
            assert!(outcome.is_err(), "a flipped byte at {at} is caught");
        }
        Ok(())
    }
}

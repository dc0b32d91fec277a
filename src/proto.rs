//! The `pressroom.v1` API as generated from `proto/` by `build.rs`: the
//! prost messages (which are also the records kept on disk), the tonic server
//! and client, and the encoded descriptor set that server reflection serves.

/// Package `pressroom.v1`, with the proto3 JSON mapping (serde) of every
/// message.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("pressroom.v1");
    include!(concat!(env!("OUT_DIR"), "/pressroom.v1.serde.rs"));
}

pub use pbjson_types::{FieldMask, Timestamp};

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    timestamp(std::time::SystemTime::now())
}

/// A system time as a protobuf timestamp (times before 1970 are negative).
pub fn timestamp(time: std::time::SystemTime) -> Timestamp {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => Timestamp {
            seconds: since.as_secs() as i64,
            nanos: since.subsec_nanos() as i32,
        },
        Err(before) => {
            let before = before.duration();
            let mut seconds = -(before.as_secs() as i64);
            let mut nanos = -(before.subsec_nanos() as i32);
            if nanos < 0 {
                seconds -= 1;
                nanos += 1_000_000_000;
            }
            Timestamp { seconds, nanos }
        }
    }
}

/// Orders two timestamps (prost's `Timestamp` has no `Ord`).
pub fn compare_times(a: &Timestamp, b: &Timestamp) -> std::cmp::Ordering {
    (a.seconds, a.nanos).cmp(&(b.seconds, b.nanos))
}

/// The encoded `FileDescriptorSet` of every file in `proto/`, with imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pressroom_descriptor.bin"));

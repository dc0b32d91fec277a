//! The `pressroom.v1` API as generated from `proto/` by `build.rs`: the
//! prost messages (which are also the records kept on disk), the tonic server
//! and client, and the encoded descriptor set that server reflection serves.

pub mod codec;

/// Package `pressroom.v1`, with the proto3 JSON mapping (serde) of every
/// message.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("pressroom.v1");
    include!(concat!(env!("OUT_DIR"), "/pressroom.v1.serde.rs"));
}

/// The server's twin of `StreamSubscriptionResponse`, and the
/// `SubscriptionService` server generated to send it: identical on the wire
/// (a length-delimited field is the same whether encoded from a message or
/// copied), but a press release is carried as its encoded bytes — as sled
/// stores them — so the stream neither decodes nor encodes it again.
/// Clients use the generated types of [`v1`].
pub mod wire {
    use super::v1::Highlight;

    /// `pressroom.v1.StreamSubscriptionResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamSubscriptionResponse {
        /// `received_events`.
        #[prost(message, repeated, tag = "1")]
        pub received_events: Vec<ReceivedEvent>,
        /// `acknowledged_ids`.
        #[prost(string, repeated, tag = "2")]
        pub acknowledged_ids: Vec<String>,
    }

    /// `pressroom.v1.ReceivedEvent`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReceivedEvent {
        /// `ack_id`.
        #[prost(string, tag = "1")]
        pub ack_id: String,
        /// `event`.
        #[prost(message, optional, tag = "2")]
        pub event: Option<PressReleaseEvent>,
        /// `delivery_attempt`.
        #[prost(int32, tag = "3")]
        pub delivery_attempt: i32,
    }

    /// `pressroom.v1.PressReleaseEvent`, its release as encoded bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PressReleaseEvent {
        /// `cursor`.
        #[prost(string, tag = "1")]
        pub cursor: String,
        /// `type` (an `EventType`).
        #[prost(int32, tag = "2")]
        pub r#type: i32,
        /// `press_release`: an encoded `PressRelease` (present even when
        /// empty, as a message field would be).
        #[prost(bytes = "bytes", optional, tag = "3")]
        pub press_release: Option<bytes::Bytes>,
        /// `commit_time`.
        #[prost(message, optional, tag = "4")]
        pub commit_time: Option<super::Timestamp>,
        /// `highlights`.
        #[prost(message, repeated, tag = "5")]
        pub highlights: Vec<Highlight>,
    }

    impl From<super::v1::PressReleaseEvent> for PressReleaseEvent {
        /// The event with its release encoded.
        fn from(event: super::v1::PressReleaseEvent) -> Self {
            Self {
                cursor: event.cursor,
                r#type: event.r#type,
                press_release: event
                    .press_release
                    .map(|release| prost::Message::encode_to_vec(&release).into()),
                commit_time: event.commit_time,
                highlights: event.highlights,
            }
        }
    }

    /// The servers generated with the twin above.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod server {
        include!(concat!(env!("OUT_DIR"), "/wire/pressroom.v1.rs"));
    }
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

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::{v1, wire};

    #[test]
    fn the_twin_response_is_the_generated_one_on_the_wire() {
        let release = v1::PressRelease {
            name: "pressReleases/1".into(),
            headline: "Twins".into(),
            revision: 3,
            state: v1::press_release::State::Withdrawn as i32,
            ..Default::default()
        };
        let event = v1::PressReleaseEvent {
            cursor: "c".into(),
            r#type: v1::EventType::Withdrawn as i32,
            press_release: Some(release.clone()),
            commit_time: Some(super::Timestamp {
                seconds: 5,
                nanos: 6,
            }),
            highlights: Vec::new(),
        };
        let generated = v1::StreamSubscriptionResponse {
            received_events: vec![v1::ReceivedEvent {
                ack_id: "a".into(),
                event: Some(event.clone()),
                delivery_attempt: 2,
            }],
            acknowledged_ids: vec!["b".into()],
        };
        let twin = wire::StreamSubscriptionResponse {
            received_events: vec![wire::ReceivedEvent {
                ack_id: "a".into(),
                event: Some(event.into()),
                delivery_attempt: 2,
            }],
            acknowledged_ids: vec!["b".into()],
        };
        assert_eq!(twin.encode_to_vec(), generated.encode_to_vec());
        assert_eq!(
            v1::StreamSubscriptionResponse::decode(twin.encode_to_vec().as_slice()).ok(),
            Some(generated)
        );
        // An empty release is still present, as a message field would be.
        let empty = wire::PressReleaseEvent {
            press_release: Some(Default::default()),
            ..Default::default()
        };
        let decoded = v1::PressReleaseEvent::decode(empty.encode_to_vec().as_slice()).ok();
        assert_eq!(
            decoded.and_then(|e| e.press_release),
            Some(Default::default())
        );
    }
}

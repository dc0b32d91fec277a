//! Raw request bodies, sent past the generated client to every method of
//! the real binary (both services: press releases and subscriptions):
//! random bytes, valid messages of the wrong type, truncated, flipped and
//! oversized ones — on the bidirectional StreamSubscription as the first
//! message and after a valid one — and broken gRPC framing
//! ([`super::framing`]). Each must get a clean status, and the server's
//! memory must stay bounded.

use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use http::uri::PathAndQuery;
use pressroom::proto::v1::{
    BackupPressReleasesRequest, CreatePressReleaseRequest, DeletePressReleaseRequest,
    GetPressReleaseRequest, GetPressReleaseStatsRequest, ImportPressReleasesRequest,
    ListPressReleasesRequest, ListPressReleasesResponse, PressRelease, PressReleaseFilter,
    SearchPressReleasesRequest, UpdatePressReleaseRequest, WatchPressReleasesRequest,
    watch_press_releases_request::Start,
};
use pressroom::proto::v1::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, GetSubscriptionRequest,
    ListDeadLettersRequest, ListSubscriptionsRequest, ReplayDeadLettersRequest,
    SeekSubscriptionRequest, StartPosition, StreamSubscriptionRequest, Subscription,
    seek_subscription_request::Target, subscription_service_client::SubscriptionServiceClient,
};
use proptest::{
    prelude::Rng as _,
    test_runner::{RngAlgorithm, TestRng},
};
use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use super::{
    Error,
    framing::{broken_frames, raw_http},
    sample_release,
};
use crate::helpers::{TestResult, at, create_request, release};

/// The request limit the hostile server runs with.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How much the server's resident memory may grow over a whole run.
const MAX_RSS_GROWTH_BYTES: u64 = 200 * 1024 * 1024;
/// Raw bodies sent to each method.
const CASES_PER_METHOD: usize = 300;

/// How a method takes and answers messages.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Unary,
    ServerStream,
    ClientStream,
    /// Both ways: the bodies go first alone, or after a valid first
    /// message ([`first_stream_request`]).
    BidiStream,
}

/// One method of `pressroom.v1.PressReleaseService` or
/// `pressroom.v1.SubscriptionService`, and whether a body decodes as its
/// request type.
struct Method {
    path: &'static str,
    shape: Shape,
    decodes: fn(&[u8]) -> bool,
}

fn decodes<M: Message + Default>(bytes: &[u8]) -> bool {
    M::decode(bytes).is_ok()
}

const METHODS: [Method; 18] = [
    Method {
        path: "/pressroom.v1.PressReleaseService/CreatePressRelease",
        shape: Shape::Unary,
        decodes: decodes::<CreatePressReleaseRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/GetPressRelease",
        shape: Shape::Unary,
        decodes: decodes::<GetPressReleaseRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/ListPressReleases",
        shape: Shape::Unary,
        decodes: decodes::<ListPressReleasesRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/UpdatePressRelease",
        shape: Shape::Unary,
        decodes: decodes::<UpdatePressReleaseRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/DeletePressRelease",
        shape: Shape::Unary,
        decodes: decodes::<DeletePressReleaseRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/WatchPressReleases",
        shape: Shape::ServerStream,
        decodes: decodes::<WatchPressReleasesRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/ImportPressReleases",
        shape: Shape::ClientStream,
        decodes: decodes::<ImportPressReleasesRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/SearchPressReleases",
        shape: Shape::Unary,
        decodes: decodes::<SearchPressReleasesRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/GetPressReleaseStats",
        shape: Shape::Unary,
        decodes: decodes::<GetPressReleaseStatsRequest>,
    },
    Method {
        path: "/pressroom.v1.PressReleaseService/BackupPressReleases",
        shape: Shape::ServerStream,
        decodes: decodes::<BackupPressReleasesRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/CreateSubscription",
        shape: Shape::Unary,
        decodes: decodes::<CreateSubscriptionRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/GetSubscription",
        shape: Shape::Unary,
        decodes: decodes::<GetSubscriptionRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/ListSubscriptions",
        shape: Shape::Unary,
        decodes: decodes::<ListSubscriptionsRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/DeleteSubscription",
        shape: Shape::Unary,
        decodes: decodes::<DeleteSubscriptionRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/StreamSubscription",
        shape: Shape::BidiStream,
        decodes: decodes::<StreamSubscriptionRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/SeekSubscription",
        shape: Shape::Unary,
        decodes: decodes::<SeekSubscriptionRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/ListDeadLetters",
        shape: Shape::Unary,
        decodes: decodes::<ListDeadLettersRequest>,
    },
    Method {
        path: "/pressroom.v1.SubscriptionService/ReplayDeadLetters",
        shape: Shape::Unary,
        decodes: decodes::<ReplayDeadLettersRequest>,
    },
];

/// The subscription the raw bodies name.
const SUBSCRIPTION: &str = "subscriptions/hostile";

/// Creates [`SUBSCRIPTION`] unless it exists.
async fn ensure_subscription(channel: &Channel) -> TestResult {
    let created = SubscriptionServiceClient::new(channel.clone())
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: SUBSCRIPTION.trim_start_matches("subscriptions/").into(),
            subscription: Some(Subscription::default()),
        })
        .await;
    match created {
        Err(status) if status.code() != Code::AlreadyExists => Err(status.into()),
        _ => Ok(()),
    }
}

/// A valid first message of a StreamSubscription stream.
fn first_stream_request() -> Bytes {
    Bytes::from(
        StreamSubscriptionRequest {
            subscription: SUBSCRIPTION.into(),
            max_outstanding_events: 5,
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_clean_statuses_and_memory_stays_bounded() -> TestResult {
    // The real binary, so that its memory is its own.
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data").display().to_string();
    let max = MAX_REQUEST_BYTES.to_string();
    let server =
        crate::helpers::Binary::serve(&["--data-dir", &data_dir, "--max-request-bytes", &max])?;
    let pid = server.child.id();
    let addr = server.addr;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client =
        pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
            channel.clone(),
        );
    // Something to find, page through, update and back up.
    let mut names = Vec::new();
    for i in 0..30 {
        let created = client
            .create_press_release(create_request(sample_release(i)))
            .await?
            .into_inner();
        names.push(created.name);
    }
    // And a subscription to get, stream, seek and delete.
    ensure_subscription(&channel).await?;
    let rss_before = resident_bytes(pid)?;
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let samples = valid_messages(&names);
    let mut sent = 0;
    for method in &METHODS {
        for case in 0..CASES_PER_METHOD {
            let bodies = match method.shape {
                Shape::ClientStream => {
                    let count = 1 + rng.next_u64() % 3;
                    (0..count)
                        .map(|_| hostile_body(&mut rng, &samples, case))
                        .collect()
                }
                // Every other stream opens with a valid message.
                Shape::BidiStream if case % 2 == 1 => {
                    // (Raw bodies to DeleteSubscription may have deleted it.)
                    ensure_subscription(&channel).await?;
                    vec![
                        first_stream_request(),
                        hostile_body(&mut rng, &samples, case),
                    ]
                }
                _ => vec![hostile_body(&mut rng, &samples, case)],
            };
            let outcome = call(channel.clone(), method, bodies.clone()).await;
            check_outcome(method, &bodies, &outcome).map_err(|e| {
                format!(
                    "{} with {} bodies, the first {:02x?}...: {e}",
                    method.path,
                    bodies.len(),
                    &bodies[0][..bodies[0].len().min(64)]
                )
            })?;
            sent += 1;
        }
    }

    // Past --max-request-bytes: a clean RESOURCE_EXHAUSTED or OUT_OF_RANGE.
    for method in &METHODS {
        for size in [MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES, 1 << 20] {
            let body = oversized_create(size);
            let outcome = call(channel.clone(), method, vec![body]).await;
            match outcome {
                Err(status)
                    if matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange) => {}
                other => {
                    return Err(format!(
                        "{} with a {size}-byte message: {other:?}, expected RESOURCE_EXHAUSTED",
                        method.path
                    )
                    .into());
                }
            }
            sent += 1;
        }
    }
    // And past the limit after a valid first message of a stream.
    let streaming = METHODS
        .iter()
        .find(|m| m.shape == Shape::BidiStream)
        .ok_or("no bidirectional method")?;
    ensure_subscription(&channel).await?;
    let bodies = vec![first_stream_request(), oversized_create(1 << 20)];
    match call(channel.clone(), streaming, bodies).await {
        Err(status) if matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange) => {}
        other => {
            return Err(format!(
                "a {}-byte second message on {}: {other:?}, expected RESOURCE_EXHAUSTED",
                1 << 20,
                streaming.path
            )
            .into());
        }
    }
    sent += 1;

    // Broken gRPC framing, below the codec.
    for (what, request) in broken_frames(addr) {
        let status = raw_http(channel.clone(), request)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if matches!(status.code(), Code::Unknown | Code::Unavailable | Code::Ok) {
            return Err(format!("{what}: {status:?}").into());
        }
        sent += 1;
    }

    // Still serving, on the same connection and on a new one.
    let new_channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let fresh = pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
        new_channel,
    )
    .create_press_release(create_request(release("Still serving")))
    .await?
    .into_inner();
    client
        .get_press_release(GetPressReleaseRequest { name: fresh.name })
        .await?;
    SubscriptionServiceClient::new(channel.clone())
        .list_subscriptions(ListSubscriptionsRequest::default())
        .await?;
    let rss_after = resident_bytes(pid)?;
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "hostile input: {sent} calls; resident memory {} MiB before, {} MiB after",
        rss_before >> 20,
        rss_after >> 20
    );
    assert!(
        growth < MAX_RSS_GROWTH_BYTES,
        "resident memory grew by {} MiB",
        growth >> 20
    );
    let status = tokio::task::spawn_blocking(move || server.terminate()).await??;
    assert!(status.success(), "SIGTERM ended the server with {status}");
    Ok(())
}

/// Checks what a raw call got, knowing whether its bodies decode.
fn check_outcome(
    method: &Method,
    bodies: &[Bytes],
    outcome: &Result<Bytes, Status>,
) -> Result<(), Error> {
    let all_decode = bodies.iter().all(|b| (method.decodes)(b));
    let Err(status) = outcome else {
        return if all_decode {
            Ok(())
        } else {
            Err("a body that does not decode was accepted".into())
        };
    };
    let code = status.code();
    if !all_decode {
        // tonic answers a message it cannot decode with INTERNAL, as gRPC
        // prescribes; nothing else may happen to it.
        return if code == Code::Internal && status.message().contains("decode") {
            Ok(())
        } else {
            Err(format!("an undecodable body got {status:?}").into())
        };
    }
    let unavailable_ok = method.path.ends_with("SearchPressReleases");
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::Aborted
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::ResourceExhausted => Ok(()),
        Code::Unavailable if unavailable_ok => Ok(()),
        _ => Err(format!("a body that decodes got {status:?}").into()),
    }
}

/// One hostile request body; `case` cycles through the kinds.
fn hostile_body(rng: &mut TestRng, samples: &[Bytes], case: usize) -> Bytes {
    let pick =
        |rng: &mut TestRng| samples[(rng.next_u64() % samples.len() as u64) as usize].clone();
    let random_bytes = |rng: &mut TestRng, max: u64| {
        let len = rng.next_u64() % max;
        let mut bytes = vec![0; len as usize];
        rng.fill_bytes(&mut bytes);
        Bytes::from(bytes)
    };
    match case % 12 {
        // Random bytes, short and longer.
        0 => random_bytes(rng, 64),
        1 => random_bytes(rng, 4_096),
        // A valid message (of any request type: often the wrong one).
        2 => pick(rng),
        // Truncated.
        3 => {
            let whole = pick(rng);
            let cut = (rng.next_u64() % (whole.len() as u64 + 1)) as usize;
            whole.slice(..cut)
        }
        // Bits flipped.
        4 => {
            let mut bytes = pick(rng).to_vec();
            for _ in 0..1 + rng.next_u64() % 4 {
                if !bytes.is_empty() {
                    let at = (rng.next_u64() % bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << (rng.next_u64() % 8);
                }
            }
            Bytes::from(bytes)
        }
        // A valid message with random bytes spliced in or appended.
        5 => {
            let mut bytes = pick(rng).to_vec();
            let at = (rng.next_u64() % (bytes.len() as u64 + 1)) as usize;
            let junk = random_bytes(rng, 32);
            bytes.splice(at..at, junk.iter().copied());
            Bytes::from(bytes)
        }
        // A huge length or an over-long varint.
        6 => {
            let field = 1 + rng.next_u64() % 30;
            let mut bytes = vec![((field << 3) | 2) as u8];
            match rng.next_u64() % 4 {
                0 => bytes.extend([0xff; 9].iter().chain(&[0x01])),
                1 => bytes.extend([0xff, 0xff, 0xff, 0xff, 0x0f]),
                2 => bytes.extend([0x80; 12]),
                _ => bytes.extend([0xff; 20]),
            }
            bytes.extend_from_slice(&random_bytes(rng, 16));
            Bytes::from(bytes)
        }
        // Deeply nested groups of an unknown field, and nested messages.
        7 => {
            let depth = 1 + (rng.next_u64() % 20_000) as usize;
            let mut bytes = vec![0x7b; depth];
            bytes.extend(std::iter::repeat_n(0x7c, depth));
            Bytes::from(bytes)
        }
        8 => {
            let mut inner = pick(rng).to_vec();
            for _ in 0..1 + rng.next_u64() % 200 {
                let mut outer = Vec::with_capacity(inner.len() + 11);
                outer.push(0x0a);
                prost::encoding::encode_varint(inner.len() as u64, &mut outer);
                outer.extend_from_slice(&inner);
                inner = outer;
            }
            Bytes::from(inner)
        }
        // A string field holding invalid UTF-8, NULs and control characters.
        9 => {
            let field = 1 + rng.next_u64() % 4;
            let mut value = random_bytes(rng, 40).to_vec();
            value.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3, 0x28]);
            let mut bytes = vec![((field << 3) | 2) as u8];
            prost::encoding::encode_varint(value.len() as u64, &mut bytes);
            bytes.extend_from_slice(&value);
            Bytes::from(bytes)
        }
        // Known fields with the wrong wire type.
        10 => {
            let mut bytes = Vec::new();
            for _ in 0..1 + rng.next_u64() % 6 {
                let field = 1 + rng.next_u64() % 25;
                let wire = rng.next_u64() % 6;
                bytes.push(((field << 3) | wire) as u8);
                match wire {
                    0 => prost::encoding::encode_varint(rng.next_u64(), &mut bytes),
                    1 => bytes.extend_from_slice(&rng.next_u64().to_le_bytes()),
                    2 => {
                        let value = random_bytes(rng, 24);
                        prost::encoding::encode_varint(value.len() as u64, &mut bytes);
                        bytes.extend_from_slice(&value);
                    }
                    5 => bytes.extend_from_slice(&rng.next_u32().to_le_bytes()),
                    _ => {}
                }
            }
            Bytes::from(bytes)
        }
        // Many repeated values, short of the size limit.
        _ => {
            let filter = PressReleaseFilter {
                channels: (0..120).map(|i| format!("c{i}")).collect(),
                countries: vec!["ZZ".into(); 3],
                ..Default::default()
            };
            let list = ListPressReleasesRequest {
                filter: Some(filter),
                page_size: i32::MIN,
                ..Default::default()
            };
            Bytes::from(list.encode_to_vec())
        }
    }
}

/// Valid messages of every request type (and some responses), to send
/// whole, cut, flipped and to the wrong method.
fn valid_messages(names: &[String]) -> Vec<Bytes> {
    let mut messages = press_release_messages(names);
    messages.extend(subscription_messages());
    messages
}

/// Valid requests of every `SubscriptionService` method.
fn subscription_messages() -> Vec<Bytes> {
    let subscription = SUBSCRIPTION.to_string();
    let messages: Vec<Vec<u8>> = vec![
        CreateSubscriptionRequest {
            subscription_id: "hostile-two".into(),
            subscription: Some(Subscription {
                query: "solar".into(),
                max_deliveries: 2,
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        GetSubscriptionRequest {
            name: subscription.clone(),
        }
        .encode_to_vec(),
        ListSubscriptionsRequest {
            page_size: 1,
            page_token: String::new(),
        }
        .encode_to_vec(),
        SeekSubscriptionRequest {
            subscription: subscription.clone(),
            target: Some(Target::Position(StartPosition::Beginning as i32)),
        }
        .encode_to_vec(),
        ListDeadLettersRequest {
            subscription: subscription.clone(),
            page_size: 2,
            ..Default::default()
        }
        .encode_to_vec(),
        ReplayDeadLettersRequest {
            subscription,
            cursors: Vec::new(),
        }
        .encode_to_vec(),
        StreamSubscriptionRequest {
            ack_ids: vec!["1.2.3".into()],
            nack_ids: vec!["x".into()],
            max_outstanding_events: 3,
            ..Default::default()
        }
        .encode_to_vec(),
    ];
    messages.into_iter().map(Bytes::from).collect()
}

/// Valid requests of every `PressReleaseService` method (and some
/// responses).
fn press_release_messages(names: &[String]) -> Vec<Bytes> {
    let name = names.first().cloned().unwrap_or_default();
    let filter = PressReleaseFilter {
        channels: vec!["business".into()],
        countries: vec!["AZ".into()],
        languages: vec!["en".into()],
        publish_time_after: Some(at(0)),
        ..Default::default()
    };
    let mut update = UpdatePressReleaseRequest {
        press_release: Some(PressRelease {
            name: name.clone(),
            etag: "0000000000000000".into(),
            headline: "Changed".into(),
            ..Default::default()
        }),
        update_mask: Some(Default::default()),
    };
    if let Some(mask) = update.update_mask.as_mut() {
        mask.paths = vec!["headline".into()];
    }
    let messages: Vec<Vec<u8>> = vec![
        create_request(sample_release(99)).encode_to_vec(),
        CreatePressReleaseRequest {
            press_release: Some(sample_release(98)),
            request_id: "hostile-request".into(),
        }
        .encode_to_vec(),
        GetPressReleaseRequest { name: name.clone() }.encode_to_vec(),
        ListPressReleasesRequest {
            filter: Some(filter.clone()),
            page_size: 5,
            ..Default::default()
        }
        .encode_to_vec(),
        update.encode_to_vec(),
        DeletePressReleaseRequest {
            name,
            etag: "0000000000000000".into(),
            reason: "hostile".into(),
        }
        .encode_to_vec(),
        WatchPressReleasesRequest {
            filter: Some(filter.clone()),
            start: Some(Start::Position(2)),
            ..Default::default()
        }
        .encode_to_vec(),
        ImportPressReleasesRequest {
            press_release: Some(sample_release(97)),
            request_id: String::new(),
        }
        .encode_to_vec(),
        SearchPressReleasesRequest {
            query: "solar OR wind -recall headline:\"new plant\"".into(),
            filter: Some(filter.clone()),
            page_size: 3,
            ..Default::default()
        }
        .encode_to_vec(),
        GetPressReleaseStatsRequest {
            filter: Some(filter),
            histogram_start_day: "2026-01-01".into(),
            histogram_end_day: "2026-01-31".into(),
        }
        .encode_to_vec(),
        ListPressReleasesResponse {
            press_releases: vec![sample_release(1), sample_release(2)],
            next_page_token: "x".into(),
        }
        .encode_to_vec(),
        sample_release(3).encode_to_vec(),
    ];
    messages.into_iter().map(Bytes::from).collect()
}

/// A create request of about `size` bytes.
fn oversized_create(size: usize) -> Bytes {
    let big = PressRelease {
        body: "x".repeat(size),
        ..release("Too big")
    };
    Bytes::from(create_request(big).encode_to_vec())
}

/// Sends raw bodies to a method and returns the (first) answer or the status.
async fn call(channel: Channel, method: &Method, bodies: Vec<Bytes>) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
    let path = PathAndQuery::from_static(method.path);
    let call = async {
        match method.shape {
            Shape::Unary => {
                let body = bodies.into_iter().next().unwrap_or_default();
                grpc.unary(tonic::Request::new(body), path, RawCodec)
                    .await
                    .map(tonic::Response::into_inner)
            }
            Shape::ClientStream => {
                let items = tokio_stream::iter(bodies);
                grpc.client_streaming(tonic::Request::new(items), path, RawCodec)
                    .await
                    .map(tonic::Response::into_inner)
            }
            Shape::ServerStream => {
                let body = bodies.into_iter().next().unwrap_or_default();
                let mut stream = grpc
                    .server_streaming(tonic::Request::new(body), path, RawCodec)
                    .await?
                    .into_inner();
                // The stream is open; its first message, if it comes soon.
                match tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
                    Ok(message) => Ok(message?.unwrap_or_default()),
                    Err(_) => Ok(Bytes::new()),
                }
            }
            Shape::BidiStream => {
                // The request side ends after `bodies`, and so does the
                // stream: its status is the answer.
                let items = tokio_stream::iter(bodies);
                let mut stream = grpc
                    .streaming(tonic::Request::new(items), path, RawCodec)
                    .await?
                    .into_inner();
                let mut last = Bytes::new();
                while let Some(message) = stream.message().await? {
                    last = message;
                }
                Ok(last)
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in 30 s")))
}

/// A codec that sends bytes as they are and hands back what comes.
struct RawCodec;

struct RawEncoder;

struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The resident memory of process `pid`.
fn resident_bytes(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("no VmRSS in /proc/self/status")?
        .parse()?;
    Ok(kib * 1024)
}

//! HTTP/2 requests whose gRPC framing is broken, below the codec: each must
//! end with a clean status.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use pressroom::proto::v1::GetPressReleaseRequest;
use prost::Message as _;
use tonic::{Status, transport::Channel};

use super::Error;

/// HTTP/2 requests whose gRPC framing is broken, each with what it is.
pub(super) fn broken_frames(
    addr: std::net::SocketAddr,
) -> Vec<(&'static str, http::Request<RawBody>)> {
    let get = GetPressReleaseRequest {
        name: "pressReleases/01a21ed9-2856-7715-bb2d-c16c7be80858".into(),
    }
    .encode_to_vec();
    let frame = |flag: u8, length: u32, payload: &[u8]| {
        let mut bytes = vec![flag];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(payload);
        Bytes::from(bytes)
    };
    let whole = frame(0, get.len() as u32, &get);
    let cases: Vec<FrameCase> = vec![
        (
            "compressed flag without an encoding",
            "GetPressRelease",
            vec![],
            frame(1, get.len() as u32, &get),
        ),
        (
            "gzip frame of garbage",
            "GetPressRelease",
            vec![("grpc-encoding", "gzip")],
            frame(1, 8, b"notgzip!"),
        ),
        (
            "unknown encoding",
            "GetPressRelease",
            vec![("grpc-encoding", "snappy-9")],
            whole.clone(),
        ),
        (
            "an invalid flag byte",
            "GetPressRelease",
            vec![],
            frame(7, get.len() as u32, &get),
        ),
        (
            "a length past the body",
            "GetPressRelease",
            vec![],
            frame(0, 1_000, &get),
        ),
        (
            "a 4 GiB length",
            "GetPressRelease",
            vec![],
            frame(0, u32::MAX, &get),
        ),
        (
            "a cut frame header",
            "GetPressRelease",
            vec![],
            Bytes::from_static(&[0, 0, 0]),
        ),
        ("no frame at all", "GetPressRelease", vec![], Bytes::new()),
        (
            "two messages to a unary method",
            "GetPressRelease",
            vec![],
            Bytes::from([whole.clone(), whole.clone()].concat()),
        ),
        (
            "a frame and a cut one",
            "CreatePressRelease",
            vec![],
            Bytes::from([whole.to_vec(), vec![0, 0, 0, 9, 1]].concat()),
        ),
        (
            "a bad grpc-timeout",
            "GetPressRelease",
            vec![("grpc-timeout", "soon")],
            whole.clone(),
        ),
        (
            "a huge grpc-timeout",
            "GetPressRelease",
            vec![("grpc-timeout", "99999999H")],
            whole.clone(),
        ),
        ("an unknown method", "NoSuchMethod", vec![], whole.clone()),
        (
            "an oversized frame to import",
            "ImportPressReleases",
            vec![],
            frame(0, 100 * 1024 * 1024, b"x"),
        ),
        (
            "a bad authorization",
            "GetPressRelease",
            vec![("authorization", "Bearer not-a-key")],
            whole.clone(),
        ),
    ];
    cases
        .into_iter()
        .filter_map(|(what, method, headers, body)| {
            let mut request = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "http://{addr}/pressroom.v1.PressReleaseService/{method}"
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let request = request.body(RawBody(Some(body)));
            assert!(request.is_ok(), "{what}: {request:?}");
            request.ok().map(|r| (what, r))
        })
        .collect()
}

/// What a broken request is, the method it goes to, its extra headers, and
/// its body.
type FrameCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Bytes,
);

/// A request body of fixed bytes.
#[derive(Debug)]
pub(super) struct RawBody(Option<Bytes>);

impl http_body::Body for RawBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// Sends a raw HTTP/2 request and returns the gRPC status it ends with.
pub(super) async fn raw_http(
    channel: Channel,
    request: http::Request<RawBody>,
) -> Result<Status, Error> {
    use tower::ServiceExt as _;
    let request = request.map(tonic::body::Body::new);
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        let response = channel.oneshot(request).await?;
        if let Some(status) = Status::from_header_map(response.headers()) {
            return Ok::<_, Error>(status);
        }
        let mut body = response.into_body();
        loop {
            let frame =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await;
            match frame {
                None => return Err("the response ended without a grpc-status".into()),
                Some(Err(status)) => return Err(format!("the response broke: {status:?}").into()),
                Some(Ok(frame)) => {
                    if let Some(status) = frame.trailers_ref().and_then(Status::from_header_map) {
                        return Ok(status);
                    }
                }
            }
        }
    })
    .await
    .map_err(|_| "no answer in 30 s")??;
    Ok(answer)
}

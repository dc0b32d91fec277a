//! The Prometheus endpoint: the standard gRPC counters and Pressroom's own
//! figures move with calls.

use std::net::SocketAddr;

use pressroom::proto::v1::{GetPressReleaseRequest, WatchPressReleasesRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    TestResult, TestServer, create_request, read_until_caught_up, release, watch,
};

pub(crate) async fn scrape(
    addr: SocketAddr,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    Ok(text)
}

/// The value of the sample whose line starts with `prefix`, 0 if absent.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_after_calls() -> TestResult {
    let mut server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]).await;
    let addr = server.metrics_addr.ok_or("no metrics port")?;
    let not_found = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="pressroom.v1.PressReleaseService",grpc_method="GetPressRelease",grpc_code="NotFound"}"#;
    let started = r#"grpc_server_started_total{grpc_type="unary",grpc_service="pressroom.v1.PressReleaseService",grpc_method="GetPressRelease"}"#;
    let sent = r#"grpc_server_msg_sent_total{grpc_type="server_stream",grpc_service="pressroom.v1.PressReleaseService",grpc_method="WatchPressReleases"}"#;
    let before = scrape(addr).await?;

    let missing = GetPressReleaseRequest {
        name: format!("pressReleases/{}", uuid::Uuid::now_v7()),
    };
    let _ = server.client.get_press_release(missing).await;
    for i in 0..3 {
        server
            .client
            .create_press_release(create_request(release(&format!("counted {i}"))))
            .await?;
    }
    let mut stream = watch(
        &mut server.client,
        WatchPressReleasesRequest {
            filter: None,
            start: Some(
                pressroom::proto::v1::watch_press_releases_request::Start::Position(
                    pressroom::proto::v1::StartPosition::Beginning as i32,
                ),
            ),
            ..Default::default()
        },
    )
    .await?;
    read_until_caught_up(&mut stream).await?;

    let after = scrape(addr).await?;
    assert!(
        value(&after, not_found) >= value(&before, not_found) + 1.0,
        "{after}"
    );
    assert!(value(&after, started) >= value(&before, started) + 1.0);
    assert!(
        value(&after, sent) >= value(&before, sent) + 4.0,
        "3 events and a progress were sent"
    );
    assert!(
        after.contains("grpc_server_handling_seconds_bucket"),
        "the latency histogram is exported"
    );
    assert!(after.contains("grpc_server_msg_received_total"));
    assert_eq!(value(&after, "pressroom_change_log_head "), 3.0);
    assert_eq!(value(&after, "pressroom_releases_published "), 3.0);
    assert_eq!(value(&after, "pressroom_active_watchers "), 1.0);
    assert!(after.contains("pressroom_flush_seconds_bucket"));
    assert!(after.contains("pressroom_write_batch_size_bucket"));
    assert!(after.contains("pressroom_embargoes_pending "));
    assert!(after.contains("pressroom_search_index_lag "));
    Ok(())
}

//! Equal queries (in meaning, not only in spelling) share one matching,
//! and their group ends with its last stream.

use std::time::{Duration, Instant};

use super::{create, now, query_watch};
use crate::helpers::{TestResult, TestServer, read_events, read_until_caught_up, release, watch};

#[tokio::test]
async fn equal_queries_share_one_matching() -> TestResult {
    let mut server = TestServer::start().await;
    let mut client = server.new_client().await;
    let mut streams = Vec::new();
    for query in [
        "solar OR wind acme",
        "acme  wind OR solar",
        "acme wind OR solar",
        "tidal",
    ] {
        let mut stream = watch(&mut client, query_watch(query, None, now())).await?;
        read_until_caught_up(&mut stream).await?;
        streams.push(stream);
    }
    assert_eq!(server.watchers.queries().groups, 2);
    create(&mut server.client, release("Acme builds a wind farm")).await?;
    for stream in streams.iter_mut().take(3) {
        assert_eq!(read_events(stream, 1).await?.events.len(), 1);
    }
    assert_eq!(
        server.watchers.queries().changes_matched,
        1,
        "one change, matched once for four streams"
    );
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.watchers.queries().groups > 0 {
        if Instant::now() > deadline {
            return Err("the groups outlived their streams".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

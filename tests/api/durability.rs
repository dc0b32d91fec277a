//! Durability, seen from outside the server.
//!
//! - The reply to a create is never written to the socket before a sync
//!   (`fdatasync`/`fsync`) of the store's log has returned: the real binary
//!   runs under `strace -f`, and the trace is checked for every create. A
//!   trace of the real binary shows what the kernel was asked to do, in
//!   order, with nothing of ours in between (an `LD_PRELOAD` shim would be a
//!   second program to build and trust, and a FUSE layer needs a kernel
//!   module and privileges CI may lack); `.ci/run` installs strace.
//! - Durable before visible: while the store's sync is held open (a test
//!   hook of the store, behind the `test-hooks` feature; everything else is
//!   the production path), a change that is applied but not yet synced is
//!   not seen by Get, List, Stats, Search or Watch: they wait, or answer as
//!   if it were not there.

use std::{collections::HashMap, sync::Arc, time::Duration};

use pressroom::proto::v1::{
    GetPressReleaseRequest, GetPressReleaseStatsRequest, ListPressReleasesRequest,
    SearchPressReleasesRequest, StartPosition, WatchPressReleasesRequest,
    watch_press_releases_request::Start, watch_press_releases_response::Kind,
};
use tokio_stream::StreamExt as _;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    Binary, TestResult, TestServer, create_request, open_store, release, temp_dir,
};

/// How long a read is given to show the held change before the test
/// concludes that it waits.
const PATIENCE: Duration = Duration::from_millis(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_change_is_not_visible_before_its_sync_has_returned() -> TestResult {
    let dir = temp_dir();
    let store = open_store(&dir);
    let server = TestServer::start_on_store(Arc::clone(&dir), Arc::clone(&store)).await;
    let mut client = server.client.clone();
    let first = client
        .create_press_release(create_request(release("Durable first harbour")))
        .await?
        .into_inner();

    let held = store.hold_syncs();
    let mut creating_client = server.new_client().await;
    let creating = tokio::spawn(async move {
        creating_client
            .create_press_release(create_request(release("Pending second lighthouse")))
            .await
    });
    // Wait until the store has applied the second create (its log entry is
    // readable in-process) while its sync is held.
    let entry = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(entry) = store
                .read_log(1, store.log_head(), 1)
                .ok()
                .and_then(|mut e| e.pop())
            {
                return entry;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    let second = format!(
        "pressReleases/{}",
        Uuid::from_slice(&entry.release_id)?.hyphenated()
    );

    // Get: waits, or NOT_FOUND; never the release.
    let mut getter = server.new_client().await;
    let name = second.clone();
    let get = tokio::spawn(async move {
        getter
            .get_press_release(GetPressReleaseRequest { name })
            .await
    });
    // List, Stats, Search: wait, or answer without it.
    let mut lister = server.new_client().await;
    let list = tokio::spawn(async move {
        lister
            .list_press_releases(ListPressReleasesRequest::default())
            .await
    });
    let mut counter = server.new_client().await;
    let stats = tokio::spawn(async move {
        counter
            .get_press_release_stats(GetPressReleaseStatsRequest::default())
            .await
    });
    let mut searcher = server.new_client().await;
    let search = tokio::spawn(async move {
        searcher
            .search_press_releases(SearchPressReleasesRequest {
                query: "lighthouse".into(),
                ..Default::default()
            })
            .await
    });
    // Watch from the beginning: the first release only.
    let mut watch = server
        .new_client()
        .await
        .watch_press_releases(WatchPressReleasesRequest {
            filter: None,
            start: Some(Start::Position(StartPosition::Beginning as i32)),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut watched = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = watch.next().await {
            if let Some(Kind::Event(event)) = message.kind {
                watched.extend(event.press_release.map(|r| r.name));
            }
        }
    })
    .await;
    assert_eq!(
        watched,
        std::slice::from_ref(&first.name),
        "watch showed only the durable release"
    );

    tokio::time::sleep(PATIENCE).await;
    assert!(
        !creating.is_finished(),
        "the create was answered before its sync"
    );
    if get.is_finished() {
        let answer = get.await?;
        assert_eq!(
            answer.map_err(|s| s.code()).err(),
            Some(Code::NotFound),
            "Get showed the release before it was durable"
        );
    } else {
        // It waits; it must answer with the release once the sync returns.
        tokio::spawn(async move {
            let _ = get.await;
        });
    }
    if list.is_finished() {
        let names: Vec<String> = list
            .await??
            .into_inner()
            .press_releases
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            names,
            std::slice::from_ref(&first.name),
            "List showed the held release"
        );
    }
    if stats.is_finished() {
        assert_eq!(stats.await??.into_inner().total, 1, "Stats counted it");
    }
    if search.is_finished() {
        match search.await? {
            Ok(found) => assert!(found.into_inner().results.is_empty(), "Search found it"),
            // A fresh index may still be opening; that shows nothing either.
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
    }

    drop(held);
    let created = tokio::time::timeout(Duration::from_secs(10), creating).await???;
    assert_eq!(created.into_inner().name, second);
    let got = client
        .get_press_release(GetPressReleaseRequest {
            name: second.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(got.headline, "Pending second lighthouse");
    Ok(())
}

/// The syscalls the fsync-before-ack check traces.
const TRACED: &str =
    "trace=fsync,fdatasync,read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg";

#[test]
fn every_create_is_answered_only_after_a_sync_of_the_store() -> TestResult {
    let strace_ok = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    assert!(
        strace_ok,
        "this test needs strace (`apt-get install -y strace`; .ci/run installs it)"
    );
    let dir = temp_dir();
    let trace = dir.path().join("trace");
    let data_dir = dir.path().join("data");
    let trace_arg = trace.display().to_string();
    // Any build can be checked the same way (the old one, to see it fail).
    let binary = std::env::var("PRESSROOM_TRACED_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_pressroom").to_string());
    let server = Binary::serve_under(
        &[
            "strace", "-f", "-qq", "-y", "-s", "65536", "-e", TRACED, "-o", &trace_arg,
        ],
        &binary,
        &["--data-dir", &data_dir.display().to_string()],
    )?;
    let addr = server.addr;
    // Headline → name, for one create at a time and for concurrent ones
    // (which share syncs).
    let acknowledged: HashMap<String, String> =
        tokio::runtime::Runtime::new()?.block_on(async {
            let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            let client =
                pressroom::proto::v1::press_release_service_client::PressReleaseServiceClient::new(
                    channel,
                );
            let nonce = Uuid::new_v4().simple().to_string();
            let mut acknowledged = HashMap::new();
            for i in 0..10 {
                let headline = format!("Sync probe {i} {nonce}");
                let created = client
                    .clone()
                    .create_press_release(create_request(release(&headline)))
                    .await?;
                acknowledged.insert(headline, created.into_inner().name);
            }
            let mut calls = Vec::new();
            for i in 10..40 {
                let headline = format!("Sync probe {i} {nonce}");
                let mut client = client.clone();
                calls.push(tokio::spawn(async move {
                    let created = client
                        .create_press_release(create_request(release(&headline)))
                        .await?;
                    Ok::<_, tonic::Status>((headline, created.into_inner().name))
                }));
            }
            for call in calls {
                let (headline, name) = call.await??;
                acknowledged.insert(headline, name);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(acknowledged)
        })?;
    stop_traced(server)?;

    let text = std::fs::read_to_string(&trace)?;
    let calls = parse_trace(&text);
    let store_log = format!("{}>", data_dir.join("store").join("db").display());
    let syncs: Vec<(usize, usize)> = calls
        .iter()
        .filter(|c| matches!(c.name.as_str(), "fsync" | "fdatasync"))
        .filter(|c| c.fd_path.ends_with(&store_log) && c.ok)
        .map(|c| (c.started, c.returned))
        .collect();
    assert!(!syncs.is_empty(), "no sync of {store_log} in the trace");
    let mut late = Vec::new();
    for (headline, name) in &acknowledged {
        let received = calls
            .iter()
            .filter(|c| c.is_socket_read() && c.data.contains(headline.as_str()))
            .map(|c| c.returned)
            .min()
            .ok_or_else(|| format!("the request for {headline:?} is not in the trace"))?;
        let answered = calls
            .iter()
            .filter(|c| c.is_socket_write() && c.data.contains(name.as_str()))
            .map(|c| c.started)
            .min()
            .ok_or_else(|| format!("the reply with {name} is not in the trace"))?;
        if !syncs
            .iter()
            .any(|&(started, returned)| started > received && returned < answered)
        {
            late.push(headline.clone());
        }
    }
    late.sort();
    assert!(
        late.is_empty(),
        "{} of {} creates were answered with no sync of the store between \
         reading the request and writing the reply: {late:?}",
        late.len(),
        acknowledged.len()
    );
    Ok(())
}

/// Stops the traced server with SIGTERM (sent to the server, not to strace)
/// and waits for strace to finish writing the trace.
fn stop_traced(mut server: Binary) -> TestResult {
    let strace = server.child.id();
    let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))?;
    for pid in children.split_whitespace() {
        std::process::Command::new("kill")
            .args(["-TERM", pid])
            .status()?;
    }
    server.child.wait()?;
    Ok(())
}

/// One system call of a trace: where it started and returned (line
/// numbers), its file descriptor's path, and the data it carried.
struct Call {
    name: String,
    fd_path: String,
    data: String,
    started: usize,
    returned: usize,
    ok: bool,
}

impl Call {
    fn is_socket(&self) -> bool {
        self.fd_path.contains("socket:") || self.fd_path.contains("TCP")
    }

    fn is_socket_read(&self) -> bool {
        self.is_socket()
            && matches!(
                self.name.as_str(),
                "read" | "readv" | "recvfrom" | "recvmsg"
            )
    }

    fn is_socket_write(&self) -> bool {
        self.is_socket()
            && matches!(
                self.name.as_str(),
                "write" | "writev" | "sendto" | "sendmsg"
            )
    }
}

/// A call's text with the buffers of a `writev`/`readv` joined, so that
/// what was split between two of them (a reply's name, say) reads whole.
fn joined_iovecs(call: &str) -> String {
    let mut out = String::with_capacity(call.len());
    let mut rest = call;
    while let Some(at) = rest.find("\", iov_len=") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        match after.find("{iov_base=\"") {
            Some(next) => rest = &after[next + "{iov_base=\"".len()..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses `strace -f -y -o` output, joining calls split by other threads'
/// (`<unfinished ...>` … `<... NAME resumed>`).
fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut open: HashMap<String, (String, usize)> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            open.insert(pid.to_string(), (head.to_string(), number));
            continue;
        }
        let (whole, started) = match rest.strip_prefix("<... ") {
            Some(resumed) => {
                let Some((head, started)) = open.remove(pid) else {
                    continue;
                };
                let tail = resumed.split_once("resumed>").map_or("", |(_, t)| t);
                (format!("{head}{tail}"), started)
            }
            None => (rest.to_string(), number),
        };
        let Some((name, args)) = whole.split_once('(') else {
            continue;
        };
        let fd_path = args
            .split_once('<')
            .and_then(|(_, after)| after.split_once('>'))
            .map(|(path, _)| format!("{path}>"))
            .unwrap_or_default();
        let ok = whole
            .rsplit_once(" = ")
            .is_some_and(|(_, result)| !result.trim_start().starts_with('-'));
        calls.push(Call {
            name: name.to_string(),
            fd_path,
            data: joined_iovecs(&whole),
            started,
            returned: number,
            ok,
        });
    }
    calls
}

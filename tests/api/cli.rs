//! The `pressroom` command-line client, run as a process against the real
//! server on port 0: every verb's happy path and its most likely mistake,
//! JSON that parses back, resumable watching, feed imports, and an export →
//! import round trip.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use assert_cmd::Command;
use pressroom::proto::v1::{
    GetPressReleaseStatsResponse, PressRelease, PressReleaseEvent, press_release::State,
};

use crate::helpers::{TestResult, TestServer, create_request, list_all, release, temp_dir};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The client binary, pointed at `addr`.
fn pressroom(addr: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pressroom"));
    command
        .env("PRESSROOM_SERVER", format!("http://{addr}"))
        .env_remove("PRESSROOM_TOKEN")
        .env_remove("PRESSROOM_CA_CERT");
    command
}

/// Runs it and returns (exit code, stdout, stderr).
fn run(command: &mut Command) -> (i32, String, String) {
    match command.output() {
        Ok(output) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Err(error) => (-1, String::new(), error.to_string()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

fn lines<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect()
}

#[tokio::test]
async fn create_get_update_withdraw() -> TestResult {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "create",
            "--headline",
            "Acme opens a plant",
            "--body",
            "Full text.",
            "--channel",
            "Energy",
            "--country",
            "az",
            "--issuer",
            "Acme Corp",
            "--ticker",
            "NASDAQ:ACME",
            "-o",
            "json",
        ]))
    })
    .await?;
    assert_eq!(code, 0, "{err}");
    let created: PressRelease = parse(&out)?;
    assert_eq!(created.headline, "Acme opens a plant");
    assert_eq!(
        created.dateline.as_ref().map(|d| d.country_code.as_str()),
        Some("AZ")
    );
    assert_eq!(created.issuer.as_ref().map(|i| i.tickers.len()), Some(1));

    let name = created.name.clone();
    let (code, out, _) =
        tokio::task::spawn_blocking(
            move || run(pressroom(addr).args(["get", &name, "-o", "json"])),
        )
        .await?;
    assert_eq!(code, 0);
    assert_eq!(
        parse::<PressRelease>(&out)?,
        created,
        "-o json parses back into the proto"
    );

    let dir = temp_dir();
    let patch = dir.path().join("patch.json");
    std::fs::write(
        &patch,
        r#"{"headline": "Acme opens a bigger plant", "body": "ignored"}"#,
    )?;
    let (name, file) = (created.name.clone(), patch.display().to_string());
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "update", &name, "-f", &file, "--mask", "headline", "-o", "json",
        ]))
    })
    .await?;
    assert_eq!(code, 0, "{err}");
    let updated: PressRelease = parse(&out)?;
    assert_eq!(updated.headline, "Acme opens a bigger plant");
    assert_eq!(updated.body, "Full text.");
    assert_eq!(updated.revision, 2);

    let (name, file) = (created.name.clone(), patch.display().to_string());
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["update", &name, "-f", &file, "--mask", "nope"]))
    })
    .await?;
    assert_eq!(code, 4, "invalid input: {err}");
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("update_mask:"),
        "{err}"
    );

    let name = created.name.clone();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "withdraw",
            &name,
            "--reason",
            "issued in error",
            "-o",
            "json",
        ]))
    })
    .await?;
    assert_eq!(code, 0);
    assert_eq!(parse::<PressRelease>(&out)?.state(), State::Withdrawn);

    let name = created.name.clone();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).args(["get", &name]))).await?;
    assert_eq!(code, 3, "not found: {err}");
    assert!(err.contains("NOT_FOUND"), "{err}");

    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "create",
            "--headline",
            "x",
            "--body",
            "y",
            "--embargo-time",
            "tomorrow",
        ]))
    })
    .await?;
    assert_eq!(code, 2, "a bad flag value is a usage error: {err}");
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["create", "--headline", "", "--body", ""]))
    })
    .await?;
    assert_eq!(code, 4);
    assert!(
        err.contains("press_release.headline: is required"),
        "field violations spelled out: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn list_search_stats_and_a_missing_server() -> TestResult {
    let mut server = TestServer::start().await;
    for i in 0..7 {
        let mut input = release(&format!("Harvest report {i}"));
        input.channels = vec![if i % 2 == 0 { "Farming" } else { "Business" }.into()];
        server
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    let addr = server.addr;
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["list", "--limit", "5", "-o", "jsonl"]))
    })
    .await?;
    assert_eq!(code, 0);
    assert_eq!(lines::<PressRelease>(&out)?.len(), 5);
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["list", "--channel", "farming", "-o", "json"]))
    })
    .await?;
    assert_eq!(code, 0);
    assert_eq!(parse::<Vec<PressRelease>>(&out)?.len(), 4);
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).args(["list", "-o", "table"])))
            .await?;
    assert_eq!(code, 0);
    assert!(
        out.contains("Harvest report 6") && out.contains("headline"),
        "{out}"
    );
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["list", "--after", "last week"]))
    })
    .await?;
    assert_eq!(code, 2, "{err}");

    // The search index catches up a moment after the writes are answered:
    // ask again until it has (a bound on liveness, not on speed).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = tokio::task::spawn_blocking(move || {
            run(pressroom(addr).args(["search", "harvest", "--channel", "business", "-o", "jsonl"]))
        })
        .await?;
        assert_eq!(code, 0, "{err}");
        let found = out.lines().count();
        assert!(found <= 3, "{out}");
        if found == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the search index did not catch up: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, _, err) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).args(["search", "harvest OR"])))
            .await?;
    assert_eq!(code, 4);
    assert!(err.contains("position 8"), "{err}");

    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["stats", "--days", "3", "-o", "json"]))
    })
    .await?;
    assert_eq!(code, 0);
    let stats: GetPressReleaseStatsResponse = parse(&out)?;
    assert_eq!((stats.total, stats.histogram.len()), (7, 3));

    let dir = server.stop().await;
    let (code, _, err) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).args(["list"]))).await?;
    assert_eq!(code, 6, "no server listening is 'unavailable': {err}");
    assert!(err.contains("cannot reach the server"), "{err}");
    drop(dir);
    Ok(())
}

/// Starts `watch` in the background, printing JSON Lines.
fn spawn_watch(addr: SocketAddr, cursor_file: &Path) -> Result<Child, std::io::Error> {
    std::process::Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .env("PRESSROOM_SERVER", format!("http://{addr}"))
        .args(["watch", "--from-beginning", "-o", "jsonl", "--cursor-file"])
        .arg(cursor_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

#[tokio::test]
async fn watch_with_a_cursor_file_resumes_without_gaps_or_repeats() -> TestResult {
    let mut server = TestServer::start().await;
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(
            server
                .client
                .create_press_release(create_request(release(&format!("first {i}"))))
                .await?
                .into_inner()
                .name,
        );
    }
    let dir = temp_dir();
    let cursor = dir.path().join("cursor");
    let addr = server.addr;
    let file = cursor.display().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "watch",
            "--from-beginning",
            "--until-caught-up",
            "-o",
            "jsonl",
            "--cursor-file",
            &file,
        ]))
    })
    .await?;
    assert_eq!(code, 0, "{err}");
    let mut seen: Vec<String> = lines::<PressReleaseEvent>(&out)?
        .into_iter()
        .filter_map(|e| e.press_release.map(|r| r.name))
        .collect();
    assert_eq!(seen, made);

    // A live run, stopped with SIGTERM after two events.
    let mut child = spawn_watch(addr, &cursor)?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut names = Vec::new();
        while names.len() < 2 {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Ok(event) = parse::<PressReleaseEvent>(&line) {
                        names.extend(event.press_release.map(|r| r.name));
                    }
                }
                _ => break,
            }
        }
        names
    });
    for i in 0..2 {
        made.push(
            server
                .client
                .create_press_release(create_request(release(&format!("second {i}"))))
                .await?
                .into_inner()
                .name,
        );
    }
    let live = tokio::time::timeout(Duration::from_secs(30), reader).await??;
    seen.extend(live);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(
        status.success(),
        "watch exits cleanly on SIGTERM: {status:?}"
    );

    made.push(
        server
            .client
            .create_press_release(create_request(release("third")))
            .await?
            .into_inner()
            .name,
    );
    let file = cursor.display().to_string();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args([
            "watch",
            "--until-caught-up",
            "-o",
            "jsonl",
            "--cursor-file",
            &file,
        ]))
    })
    .await?;
    assert_eq!(code, 0);
    seen.extend(
        lines::<PressReleaseEvent>(&out)?
            .into_iter()
            .filter_map(|e| e.press_release.map(|r| r.name)),
    );
    assert_eq!(
        seen, made,
        "every release once, in order, across three runs"
    );
    Ok(())
}

#[tokio::test]
async fn importing_feeds_twice_finds_only_duplicates() -> TestResult {
    let mut server = TestServer::start().await;
    let addr = server.addr;
    let feeds = [
        format!("{FIXTURES}/wire.rss"),
        format!("{FIXTURES}/wire.atom"),
    ];
    let args = feeds.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).arg("import").args(&args))).await?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("5 items read: 5 created, 0 duplicates, 0 failed"),
        "{out}"
    );
    let args = feeds.clone();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).arg("import").args(&args))).await?;
    assert_eq!(code, 0);
    assert!(
        out.contains("5 items read: 0 created, 5 duplicates, 0 failed"),
        "{out}"
    );

    let stored = list_all(&mut server.client).await?;
    let acme = stored
        .iter()
        .find(|r| r.headline.starts_with("Acme"))
        .ok_or("missing item")?;
    let source = acme.source.clone().unwrap_or_default();
    assert_eq!(
        (source.provider.as_str(), source.item_id.as_str()),
        ("einpresswire.com", "688361301")
    );
    assert!(
        source
            .url
            .ends_with("acme-corp-opens-a-solar-panel-factory")
    );
    assert_eq!(acme.channels, ["Energy"]);
    assert!(
        acme.body.contains("<b>two million</b>") && !acme.body.contains("script"),
        "{}",
        acme.body
    );
    assert_eq!(acme.publish_time.map(|t| t.seconds), Some(1_707_401_100));
    let initech = stored
        .iter()
        .find(|r| r.headline.starts_with("Initech"))
        .ok_or("missing entry")?;
    assert_eq!(
        initech.source.as_ref().map(|s| s.provider.as_str()),
        Some("news.example-wire.com")
    );
    assert_eq!(initech.language, "en");

    // A JSON Lines file with a broken line and an invalid release.
    let dir = temp_dir();
    let jsonl = dir.path().join("batch.jsonl");
    std::fs::write(
        &jsonl,
        "{\"headline\":\"Fine\",\"body\":\"Text\"}\n{broken\n{\"headline\":\"\",\"body\":\"x\"}\n",
    )?;
    let file = jsonl.display().to_string();
    let dry = file.clone();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["import", "--dry-run", &dry]))
    })
    .await?;
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("1 would be created")
            && out.contains("batch.jsonl:2")
            && out.contains("batch.jsonl:3"),
        "{out}"
    );
    assert_eq!(
        list_all(&mut server.client).await?.len(),
        5,
        "a dry run writes nothing"
    );
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(pressroom(addr).args(["import", &file]))).await?;
    assert_eq!(code, 4);
    assert!(
        out.contains("1 created") && out.contains("batch.jsonl:3: InvalidArgument"),
        "{out}"
    );
    Ok(())
}

#[tokio::test]
async fn export_then_import_into_a_fresh_server() -> TestResult {
    let mut source = TestServer::start().await;
    for i in 0..30 {
        let mut input = release(&format!("Archived release {i}"));
        input.channels = vec!["Archive".into()];
        input.publish_time = Some(pressroom::proto::Timestamp {
            seconds: 1_600_000_000 + i * 60,
            nanos: 0,
        });
        source
            .client
            .create_press_release(create_request(input))
            .await?;
    }
    let dir = temp_dir();
    let file = dir.path().join("export.jsonl").display().to_string();
    let (from, path) = (source.addr, file.clone());
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(from).args(["export", "--output", &path]))
    })
    .await?;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("30 press releases exported"), "{err}");

    let mut target = TestServer::start().await;
    let (to, path) = (target.addr, file.clone());
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(pressroom(to).args(["import", &path]))).await?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("30 created"), "{out}");
    let (to, path) = (target.addr, file);
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(pressroom(to).args(["import", &path]))).await?;
    assert_eq!(code, 0);
    assert!(
        out.contains("0 created, 30 duplicates"),
        "an export imported twice creates nothing new: {out}"
    );

    // The same set: equal but for what the server assigns.
    let content = |r: &PressRelease| PressRelease {
        name: String::new(),
        create_time: None,
        update_time: None,
        etag: String::new(),
        ..r.clone()
    };
    let original: Vec<PressRelease> = list_all(&mut source.client)
        .await?
        .iter()
        .map(content)
        .collect();
    let copy: Vec<PressRelease> = list_all(&mut target.client)
        .await?
        .iter()
        .map(content)
        .collect();
    assert_eq!(copy, original);
    Ok(())
}

#[tokio::test]
async fn backup_keeps_the_newest_and_keys_generate() -> TestResult {
    let mut server = TestServer::start_on_sled().await;
    server
        .client
        .create_press_release(create_request(release("Backed up")))
        .await?;
    let dir = temp_dir();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups)?;
    let addr = server.addr;
    for _ in 0..2 {
        let output = backups.display().to_string();
        let (code, out, err) = tokio::task::spawn_blocking(move || {
            run(pressroom(addr).args(["backup", "--output", &output, "--keep", "1"]))
        })
        .await?;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("backup written"), "{out}");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    let files: Vec<_> = std::fs::read_dir(&backups)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "--keep 1 keeps the newest only: {files:?}");
    let restored = dir.path().join("restored").display().to_string();
    let input = files[0].display().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["restore", "--input", &input, "--data-dir", &restored]))
    })
    .await?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("at change-log position 1"), "{out}");

    let (code, out, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["keys", "generate", "--name", "bot", "--role", "publisher"]))
    })
    .await?;
    assert_eq!(code, 0);
    assert!(
        out.contains("key:") && out.contains("bot publisher sha256:"),
        "{out}"
    );
    let (code, _, _) = tokio::task::spawn_blocking(move || {
        run(pressroom(addr).args(["keys", "generate", "--name", "bot", "--role", "owner"]))
    })
    .await?;
    assert_eq!(code, 2);
    Ok(())
}

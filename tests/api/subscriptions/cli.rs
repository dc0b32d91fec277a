//! `pressroom subscription …` and `pressroom consume`.

use super::*;

/// Runs the `pressroom` binary against `addr`: (exit code, stdout, stderr).
async fn cli(addr: std::net::SocketAddr, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .env_remove("PRESSROOM_CA_CERT")
            .args(&args)
            .timeout(Duration::from_secs(30))
            .output()
    })
    .await;
    match output {
        Ok(Ok(output)) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Ok(Err(error)) => (-1, String::new(), error.to_string()),
        Err(error) => (-1, String::new(), error.to_string()),
    }
}

fn event_names(jsonl: &str) -> Result<Vec<String>, serde_json::Error> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<pressroom::proto::v1::PressReleaseEvent>(l)
                .map(|e| e.press_release.map(|r| r.name).unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_consumes_seeks_lists_and_deletes() -> TestResult {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (code, out, err) = cli(
        addr,
        &[
            "subscription",
            "create",
            "wire",
            "--from-beginning",
            "--ack-deadline",
            "5s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created: Subscription = serde_json::from_str(&out)?;
    assert_eq!(created.name, "subscriptions/wire");
    assert_eq!(created.ack_deadline.map(|d| d.seconds), Some(5));
    let names = create_releases(&server, "From the terminal", 3).await?;

    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "2"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names[..2]);
    // The first two were acknowledged before it exited: the next run gets
    // the third only.
    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "1"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names[2..]);

    let (code, out, err) = cli(addr, &["subscription", "get", "wire", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let got: Subscription = serde_json::from_str(&out)?;
    assert_eq!((got.backlog, got.outstanding_events), (0, 0), "{got:?}");

    let (code, _, err) = cli(addr, &["subscription", "seek", "wire", "--to-beginning"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        addr,
        &["consume", "wire", "-o", "jsonl", "--max-events", "3"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(event_names(&out)?, names);

    let (code, out, err) = cli(addr, &["subscription", "list", "-o", "jsonl"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, _, err) = cli(addr, &["subscription", "create", "Bad_Id"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("subscription_id"), "{err}");
    let (code, _, err) = cli(addr, &["subscription", "seek", "wire"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(addr, &["subscription", "delete", "wire"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(addr, &["subscription", "get", "wire"]).await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = cli(addr, &["consume", "wire", "--max-events", "1"]).await;
    assert_eq!(code, 3, "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_replays_dead_letters() -> TestResult {
    let server = TestServer::start().await;
    let mut client = subs(&server).await;
    create(&mut client, "poison", 60, 1, None).await?;
    let mut consumer = Consumer::open(&mut client, "poison", 10).await?;
    let names = create_releases(&server, "Poison", 2).await?;
    let events = consumer.take(2, Duration::from_secs(10)).await?;
    assert_eq!(events.len(), 2);
    consumer.nack(&events).await;

    // Both are set aside after their one delivery.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let letters = loop {
        let (code, out, err) = cli(
            server.addr,
            &["subscription", "dead-letters", "poison", "-o", "jsonl"],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let letters: Vec<pressroom::proto::v1::DeadLetter> = out
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        if letters.len() == 2 || tokio::time::Instant::now() > until {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let listed: BTreeSet<String> = letters.iter().map(|l| l.press_release.clone()).collect();
    assert_eq!(listed, names.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        letters
            .iter()
            .all(|l| l.delivery_attempts == 1 && !l.replaying)
    );
    let (code, table, err) = cli(
        server.addr,
        &["subscription", "dead-letters", "poison", "-o", "table"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("CREATED") && table.contains(&letters[0].cursor),
        "{table}"
    );

    // One by its cursor, then the rest.
    let (code, out, err) = cli(
        server.addr,
        &[
            "subscription",
            "replay",
            "poison",
            "--cursor",
            &letters[0].cursor,
            "-o",
            "table",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 dead letter(s) of subscriptions/poison"),
        "{out}"
    );
    let again = consumer.take(1, Duration::from_secs(10)).await?;
    assert_eq!(
        again.iter().map(name_of).collect::<Vec<_>>(),
        [letters[0].press_release.clone()]
    );
    consumer.ack(&again).await;
    let (code, out, err) = cli(
        server.addr,
        &["subscription", "replay", "poison", "-o", "json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let replayed: pressroom::proto::v1::ReplayDeadLettersResponse = serde_json::from_str(&out)?;
    assert_eq!(replayed.replayed, 1, "only the one not replaying yet");
    let again = consumer.take(1, Duration::from_secs(10)).await?;
    assert_eq!(
        again.iter().map(name_of).collect::<Vec<_>>(),
        [letters[1].press_release.clone()]
    );
    Ok(())
}

//! `pressroom watch --query`, through the real binary.

use assert_cmd::Command;
use pressroom::proto::v1::PressReleaseEvent;

use super::create;
use crate::helpers::{TestResult, TestServer, release};

#[tokio::test]
async fn the_cli_watches_with_a_query() -> TestResult {
    let mut server = TestServer::start().await;
    let wanted = create(
        &mut server.client,
        release("Acme announces a product recall"),
    )
    .await?;
    create(&mut server.client, release("Acme announces record results")).await?;
    let addr = server.addr;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .args([
                "watch",
                "--query",
                "recalled OR \"product recalls\"",
                "--highlight",
                "--from-beginning",
                "--until-caught-up",
                "-o",
                "jsonl",
            ])
            .output()
    })
    .await??;
    assert!(output.status.success(), "{output:?}");
    let events: Vec<PressReleaseEvent> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| e.press_release.as_ref().map(|r| r.name.clone()))
        .collect();
    assert_eq!(names, vec![wanted.name]);
    assert!(!events[0].highlights.is_empty());

    let refused = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pressroom"))
            .env("PRESSROOM_SERVER", format!("http://{addr}"))
            .env_remove("PRESSROOM_TOKEN")
            .args(["watch", "--query", "acme OR"])
            .output()
    })
    .await??;
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("position 5"));
    Ok(())
}

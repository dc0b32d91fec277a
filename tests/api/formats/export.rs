//! `get -o ninjs` and `export --format ninjs`, read back into a fresh
//! server: what both models hold comes back as it was.

use super::{find, fixture, pressroom, run};
use crate::helpers::{TestResult, TestServer, list_all, temp_dir};

#[tokio::test]
async fn a_ninjs_export_reads_back_into_a_fresh_server() -> TestResult {
    let mut first = TestServer::start().await;
    let mut command = pressroom(first.addr);
    command.args([
        "import",
        &fixture("globenewswire-us-2021-02-20.rss"),
        &fixture("businesswire-newsml-1.2-20130731006140.xml"),
    ]);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{out}{err}");
    let originals = list_all(&mut first.client).await?;
    assert_eq!(originals.len(), 6);

    // `get -o ninjs`: one ninjs 3.0 object.
    let ebix = find(&originals, "Ebix Shares").clone();
    let mut command = pressroom(first.addr);
    command.args(["get", &ebix.name, "-o", "ninjs"]);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{err}");
    let object: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(object["standard"]["version"], "3.0");
    assert_eq!(
        object["uri"],
        ebix.source
            .as_ref()
            .map(|s| s.item_id.clone())
            .unwrap_or_default()
    );
    assert_eq!(object["headlines"][0]["value"], ebix.headline);
    assert_eq!(object["organisations"][0]["symbols"][0]["ticker"], "EBIX");
    assert_eq!(
        object["organisations"][0]["symbols"][1]["ticker"],
        "US2787152063"
    );
    assert_eq!(object["located"], "Johns Creek");

    // `export --format ninjs` into a fresh server.
    let dir = temp_dir();
    let file = dir.path().join("export.jsonl");
    let mut command = pressroom(first.addr);
    command
        .args(["export", "--format", "ninjs", "--output"])
        .arg(&file);
    let (code, _, err) = run(command).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file)?.lines().count(), 6);

    let mut second = TestServer::start().await;
    let mut command = pressroom(second.addr);
    command.arg("import").arg(&file);
    let (code, out, err) = run(command).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("6 items read: 6 created"), "{out}");
    let copies = list_all(&mut second.client).await?;
    assert_eq!(copies.len(), 6);
    for original in &originals {
        let copy = copies
            .iter()
            .find(|c| c.source == original.source)
            .unwrap_or_else(|| panic!("{:?} did not come back", original.source));
        // What both models hold comes back as it was.
        assert_eq!(copy.headline, original.headline);
        assert_eq!(copy.subheadline, original.subheadline);
        assert_eq!(copy.summary, original.summary);
        assert_eq!(copy.body, original.body);
        assert_eq!(copy.body_format, original.body_format);
        assert_eq!(copy.language, original.language);
        assert_eq!(copy.issuer, original.issuer);
        assert_eq!(copy.contacts.len(), original.contacts.len());
        assert_eq!(copy.channels, original.channels);
        assert_eq!(copy.subjects, original.subjects);
        assert_eq!(copy.industries, original.industries);
        assert_eq!(copy.keywords, original.keywords);
        assert_eq!(copy.media, original.media);
        assert_eq!(copy.publish_time, original.publish_time);
        // What ninjs cannot hold: the dateline's region and printed text.
        let (a, b) = (
            copy.dateline.clone().unwrap_or_default(),
            original.dateline.clone().unwrap_or_default(),
        );
        assert_eq!((a.locality, a.country_code), (b.locality, b.country_code));
    }
    // Importing the export again changes nothing.
    let mut command = pressroom(second.addr);
    command.arg("import").arg(&file);
    let (_, out, _) = run(command).await;
    assert!(out.contains("0 created, 6 duplicates"), "{out}");
    Ok(())
}

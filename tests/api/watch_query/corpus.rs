//! The generated corpus the query streams are compared with search on:
//! seeded releases (the same on every run) with the words the queries look
//! for, queries of every form the language has, and the writes (creates,
//! then updates, withdrawals and embargoes among them, then a sentinel).

use pressroom::proto::{
    FieldMask,
    v1::{
        DeletePressReleaseRequest, ImportPressReleasesRequest, Organization, PressRelease,
        PressReleaseFilter, UpdatePressReleaseRequest, press_release::BodyFormat,
    },
};

use super::{Client, Failure};
use crate::helpers::{create_request, from_now, release};

/// A tiny seeded PRNG (splitmix64), so the generated data are the same on
/// every run.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const NOUNS: &[&str] = &[
    "acquisition",
    "acquisitions",
    "merger",
    "mergers",
    "recall",
    "recalls",
    "battery",
    "batteries",
    "factory",
    "factories",
    "solar",
    "panel",
    "panels",
    "vaccine",
    "trial",
    "trials",
    "dividend",
    "outage",
    "lidar",
    "turbine",
];
const VERBS: &[&str] = &[
    "acquires", "acquired", "merging", "recalled", "launches", "launched", "opens", "reports",
    "running", "runs",
];
const ADJECTIVES: &[&str] = &[
    "new",
    "record",
    "strategic",
    "global",
    "electric",
    "quarterly",
];
const ISSUERS: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech Systems",
    "Umbrella Pharma",
    "Stark Industries",
    "Wayne Enterprises",
];
const CHANNELS: &[&str] = &["Business", "Energy", "Health"];

fn sentence(rng: &mut Rng) -> String {
    format!(
        "The {} {} a {} {} and the {} {}.",
        rng.pick(NOUNS),
        rng.pick(VERBS),
        rng.pick(ADJECTIVES),
        rng.pick(NOUNS),
        rng.pick(NOUNS),
        rng.pick(&["grew", "said", "e-mail", "don't", "Co."]),
    )
}

/// A release of the generated corpus; every body names the test wire.
fn generated(rng: &mut Rng) -> PressRelease {
    let issuer = rng.pick(ISSUERS);
    let sentences: Vec<String> = (0..1 + rng.below(5)).map(|_| sentence(rng)).collect();
    let html = rng.chance(30);
    let body = if html {
        format!(
            "<p>Testwire &amp; {}</p><ul><li>{}</li></ul>",
            sentences.join("</p><p>"),
            rng.pick(NOUNS)
        )
    } else {
        format!("Testwire: {}", sentences.join(" "))
    };
    PressRelease {
        headline: format!(
            "{issuer} {} {} {}",
            rng.pick(VERBS),
            rng.pick(ADJECTIVES),
            rng.pick(NOUNS)
        ),
        subheadline: if rng.chance(30) {
            sentence(rng)
        } else {
            String::new()
        },
        summary: if rng.chance(50) {
            sentence(rng)
        } else {
            String::new()
        },
        body,
        body_format: if html {
            BodyFormat::Html
        } else {
            BodyFormat::PlainText
        } as i32,
        language: "en".into(),
        issuer: Some(Organization {
            name: issuer.into(),
            ..Default::default()
        }),
        keywords: (0..rng.below(4))
            .map(|_| rng.pick(NOUNS).to_string())
            .collect(),
        channels: vec![rng.pick(CHANNELS).to_string()],
        ..Default::default()
    }
}

/// Queries of every form the language has, written by hand and generated.
pub(super) fn queries(rng: &mut Rng) -> Vec<String> {
    let mut out: Vec<String> = [
        "merger",
        "acquisition OR merger",
        "\"strategic acquisition\"",
        "acquire -recall",
        "headline:recall",
        "issuer:acme",
        "issuer:\"initech systems\"",
        "keywords:battery",
        "body:\"solar panel\"",
        "battery factory",
        "\"record dividend\" OR outage",
        "running",
        "vaccine trial -headline:vaccine",
        "summary:turbine",
        "lidar OR turbine OR outage -globex",
        "\"electric battery\" issuer:globex",
        "\"don t\" -\"new lidar\"",
        "testwire",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    let fields = [
        "",
        "",
        "",
        "headline:",
        "body:",
        "issuer:",
        "keywords:",
        "summary:",
    ];
    while out.len() < 40 {
        let mut text = String::new();
        let mut excluded_last = false;
        for i in 0..1 + rng.below(3) {
            let field = fields[rng.below(fields.len())];
            let atom = if rng.chance(30) {
                format!("{field}\"{} {}\"", rng.pick(ADJECTIVES), rng.pick(NOUNS))
            } else {
                format!("{field}{}", rng.pick(NOUNS))
            };
            // `OR` only between two terms that are not excluded.
            match (i, rng.below(4)) {
                (0, _) | (_, 0 | 1) => text.push_str(&format!("{atom} ")),
                (_, 2) if !excluded_last => text.push_str(&format!("OR {atom} ")),
                _ => {
                    text.push_str(&format!("-{atom} "));
                    excluded_last = true;
                    continue;
                }
            }
            excluded_last = false;
        }
        out.push(text.trim().to_string());
    }
    out
}

/// The filters the queries are tried with.
pub(super) fn filters() -> Vec<Option<PressReleaseFilter>> {
    vec![
        None,
        Some(PressReleaseFilter {
            channels: vec!["Energy".into()],
            ..Default::default()
        }),
    ]
}

/// Writes the generated corpus: creates, then updates, withdrawals and
/// embargoes among them, then a sentinel written last. Returns how many
/// changes were written.
pub(super) async fn write_corpus(
    client: &mut Client,
    rng: &mut Rng,
    count: usize,
) -> Result<u64, Failure> {
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let mut release = generated(rng);
        if i % 29 == 0 {
            // Embargoed far ahead: never visible, never found.
            release.embargo_time = Some(from_now(86_400 * 30));
        }
        items.push(ImportPressReleasesRequest {
            press_release: Some(release),
            request_id: format!("corpus-{i}"),
        });
    }
    let imported = client
        .import_press_releases(tokio_stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(imported.created as usize, count, "{:?}", imported.failed);
    let mut changes = count as u64;
    let all = crate::helpers::list_all(client).await?;
    for (i, current) in all.iter().enumerate() {
        if i % 4 == 0 {
            let replacement = generated(rng);
            client
                .update_press_release(UpdatePressReleaseRequest {
                    press_release: Some(PressRelease {
                        name: current.name.clone(),
                        etag: current.etag.clone(),
                        ..replacement
                    }),
                    update_mask: Some(FieldMask {
                        paths: [
                            "headline",
                            "summary",
                            "body",
                            "body_format",
                            "keywords",
                            "channels",
                        ]
                        .map(String::from)
                        .to_vec(),
                    }),
                })
                .await?;
            changes += 1;
        } else if i % 7 == 0 {
            client
                .delete_press_release(DeletePressReleaseRequest {
                    name: current.name.clone(),
                    ..Default::default()
                })
                .await?;
            changes += 1;
        }
    }
    client
        .create_press_release(create_request(release("Zzsentinel closes the corpus")))
        .await?;
    Ok(changes + 1)
}

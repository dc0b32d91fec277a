//! The token matcher against the reference: generated releases and queries
//! (proptest), matched both ways, must agree exactly; and the cases that
//! name the rules (stems, phrases across values, exclusions, equality,
//! refusals).

use std::sync::Arc;

use proptest::prelude::*;

use super::{BatchIndex, QuerySet, StandingQuery};
use crate::{
    proto::v1::{Organization, PressRelease, press_release::BodyFormat},
    search::{
        SearchError, compile,
        query::{Query, QueryError, parse},
        schema::Fields,
    },
};

/// Words with their inflections, a few that the analyzer splits or
/// drops, and others that no query uses.
const VOCABULARY: &[&str] = &[
    "acquire",
    "acquired",
    "acquires",
    "acquisition",
    "acquisitions",
    "merger",
    "mergers",
    "merge",
    "run",
    "runs",
    "running",
    "ran",
    "solar",
    "Solar",
    "SOLAR",
    "panel",
    "panels",
    "recall",
    "recalled",
    "e-mail",
    "don't",
    "café",
    "Café",
    "naïve",
    "the",
    "a",
    "of",
    "acme",
    "Acme",
    "globex",
    "2026",
    "Q3",
    "wind",
    "tidal",
    "supercalifragilisticexpialidociousandmorewords",
];
const SEPARATORS: &[&str] = &[" ", " ", " ", ", ", ". ", " - ", "\n", "/", " & "];

fn text(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(VOCABULARY),
            prop::sample::select(SEPARATORS),
        ),
        0..max_words,
    )
    .prop_map(|words| {
        words
            .into_iter()
            .map(|(word, separator)| format!("{word}{separator}"))
            .collect()
    })
}

fn release() -> impl Strategy<Value = PressRelease> {
    (
        text(8),
        text(4),
        text(6),
        text(30),
        any::<bool>(),
        prop::option::of(text(3)),
        prop::collection::vec(text(3), 0..4),
    )
        .prop_map(
            |(headline, subheadline, summary, body, html, issuer, keywords)| PressRelease {
                headline,
                subheadline,
                summary,
                body: if html {
                    format!("<p>{}</p><ul><li>{}</li></ul>", body, "acme &amp; solar")
                } else {
                    body
                },
                body_format: if html {
                    BodyFormat::Html
                } else {
                    BodyFormat::PlainText
                } as i32,
                issuer: issuer.map(|name| Organization {
                    name,
                    ..Default::default()
                }),
                keywords,
                ..Default::default()
            },
        )
}

/// A query text: words and phrases, some in a field, some OR-ed, some
/// excluded. Malformed ones are kept: both sides must refuse them.
fn query_text() -> impl Strategy<Value = String> {
    let atom = (
        prop::sample::select(
            &[
                "",
                "",
                "",
                "headline:",
                "body:",
                "issuer:",
                "keywords:",
                "summary:",
            ][..],
        ),
        prop::collection::vec(prop::sample::select(VOCABULARY), 1..4),
        any::<bool>(),
    )
        .prop_map(|(field, words, quoted)| {
            if quoted || words.len() == 1 {
                let joined = words.join(" ");
                if quoted {
                    format!("{field}\"{joined}\"")
                } else {
                    format!("{field}{joined}")
                }
            } else {
                format!("{field}{}", words[0])
            }
        });
    prop::collection::vec(
        (atom, prop::sample::select(&["", "", "", "OR ", "-"][..])),
        1..5,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(atom, how)| match how {
                "-" => format!("-{atom} "),
                "OR " => format!("{atom} OR "),
                _ => format!("{atom} "),
            })
            .collect::<String>()
    })
}

/// The queries that parse, analysed both ways; the others must fail the
/// same way on both sides.
fn compiled(texts: &[String]) -> Vec<(u64, Query, Arc<StandingQuery>)> {
    let fields = Fields::new();
    let mut out = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let Ok(parsed) = parse(text) else { continue };
        let standing = StandingQuery::new(&parsed);
        let indexed = compile(&fields, &parsed);
        match (standing, indexed) {
            (Ok(standing), Ok(_)) => out.push((i as u64, parsed, Arc::new(standing))),
            (Err(a), Err(SearchError::Query(b))) => assert_eq!(a, b, "{text:?}"),
            (a, b) => panic!("{text:?}: standing {a:?}, index {:?}", b.err()),
        }
    }
    out
}

fn assert_same_matches(releases: &[PressRelease], queries: &[(u64, Query, Arc<StandingQuery>)]) {
    let set = QuerySet::new(queries.iter().map(|(id, _, q)| (*id, Arc::clone(q))));
    let batch = BatchIndex::new(queries.iter().map(|(id, q, _)| (*id, q)));
    let expected = match batch.and_then(|b| b.matching(releases)) {
        Ok(expected) => expected,
        Err(e) => panic!("the in-memory index failed: {e}"),
    };
    for (release, expected) in releases.iter().zip(expected) {
        let mut got = set.matching(release);
        got.sort_unstable();
        assert_eq!(got, expected, "release {release:#?}\nqueries {queries:#?}");
        for (id, _, query) in queries {
            assert_eq!(
                query.matches(release),
                expected.contains(id),
                "alone: {query:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matches_exactly_what_an_index_of_the_same_releases_finds(
        releases in prop::collection::vec(release(), 1..8),
        texts in prop::collection::vec(query_text(), 1..10),
    ) {
        assert_same_matches(&releases, &compiled(&texts));
    }
}

#[test]
fn phrases_stem_and_do_not_span_two_values() {
    let release = PressRelease {
        headline: "Acme acquires Globex".into(),
        body: "<p>The acquisitions of <b>solar</b> panels</p>".into(),
        body_format: BodyFormat::Html as i32,
        keywords: vec!["tidal".into(), "wind".into()],
        ..Default::default()
    };
    let cases = [
        ("acquisition", true),
        ("\"acquired globex\"", true),
        ("headline:\"acme acquire\"", true),
        ("body:acme", false),
        ("\"solar panel\"", true),
        ("\"panel solar\"", false),
        ("keywords:\"tidal wind\"", false),
        ("keywords:wind -headline:acme", false),
        ("keywords:wind -body:acme", true),
        ("merger OR acme", true),
        ("merger OR recall", false),
    ];
    let texts: Vec<String> = cases.iter().map(|(q, _)| q.to_string()).collect();
    let queries = compiled(&texts);
    assert_eq!(queries.len(), cases.len());
    for ((_, _, query), (text, expected)) in queries.iter().zip(cases) {
        assert_eq!(query.matches(&release), expected, "{text}");
    }
    assert_same_matches(std::slice::from_ref(&release), &queries);
}

#[test]
fn equal_queries_are_equal() -> Result<(), QueryError> {
    let a = StandingQuery::new(&parse("Solar OR wind acme -recall")?)?;
    let b = StandingQuery::new(&parse("acme  wind OR solar -recalled -recall")?)?;
    let c = StandingQuery::new(&parse("acme solar OR wind")?)?;
    assert_eq!(a, b);
    assert_ne!(a, c);
    Ok(())
}

#[test]
fn refuses_what_search_refuses() -> Result<(), QueryError> {
    let error = StandingQuery::new(&parse("acme \"!!\"")?).err();
    assert_eq!(error.map(|e| e.position), Some(5));
    Ok(())
}

//! Atom (RFC 4287), written with `atom_syndication`: per entry the headline
//! as `title`, the summary as `summary`, the HTML body as `content
//! type="html"`, the link as `link rel="alternate"`, `published` and
//! `updated`, channels and subjects as `category`, the issuer as `author`
//! and the dateline as `dc:coverage`.
//!
//! The one departure from "the id is the release's name": an Atom id must
//! be an absolute IRI (RFC 4287 §4.2.6), which `pressReleases/{id}` is not,
//! so entries carry `urn:uuid:{id}`, the same UUID; the name itself is in
//! the other two formats. Entries without an issuer fall back on the feed's
//! author, as Atom requires an author for each.

use std::collections::BTreeMap;

use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, FixedDateTime, Generator, Link, Person, Text,
    extension::{Extension, ExtensionMap},
};
use chrono::{DateTime, Utc};

use super::entry::{Entry, FeedInfo, xml_safe};
use crate::domain::name;

/// Dublin Core, for the dateline.
const DC: &str = "http://purl.org/dc/elements/1.1/";

/// The feed as an Atom document.
pub fn write(info: &FeedInfo, entries: &[Entry<'_>]) -> Result<String, atom_syndication::Error> {
    let mut links = vec![Link {
        href: info.self_url.clone(),
        rel: "self".into(),
        mime_type: Some("application/atom+xml".into()),
        ..Default::default()
    }];
    if info.home_url != info.self_url {
        links.push(Link {
            href: info.home_url.clone(),
            rel: "alternate".into(),
            ..Default::default()
        });
    }
    let feed = Feed {
        title: Text::plain(info.title.clone()),
        id: info.self_url.clone(),
        updated: fixed(info.updated),
        authors: vec![Person {
            name: super::GENERATOR.into(),
            ..Default::default()
        }],
        generator: Some(Generator {
            value: super::GENERATOR.into(),
            ..Default::default()
        }),
        links,
        subtitle: Some(Text::plain(info.description.clone())),
        entries: entries.iter().map(entry).collect(),
        namespaces: BTreeMap::from([("dc".to_string(), DC.to_string())]),
        ..Default::default()
    };
    let bytes = feed.write_to(Vec::new())?;
    Ok(xml_safe(bytes))
}

fn entry(entry: &Entry<'_>) -> AtomEntry {
    let release = entry.release;
    let id = name::parse("name", &release.name)
        .map(|id| format!("urn:uuid:{}", id.hyphenated()))
        .unwrap_or_else(|_| release.name.clone());
    let mut extensions = ExtensionMap::new();
    if let Some(dateline) = entry.dateline {
        extensions.insert(
            "dc".into(),
            BTreeMap::from([(
                "coverage".to_string(),
                vec![Extension {
                    name: "dc:coverage".into(),
                    value: Some(dateline.to_string()),
                    ..Default::default()
                }],
            )]),
        );
    }
    AtomEntry {
        title: Text::plain(release.headline.clone()),
        id,
        updated: fixed(entry.updated),
        published: Some(fixed(entry.published)),
        authors: entry
            .author
            .map(|name| Person {
                name: name.to_string(),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        categories: entry
            .categories
            .iter()
            .map(|term| Category {
                term: (*term).to_string(),
                ..Default::default()
            })
            .collect(),
        links: entry
            .link
            .iter()
            .map(|href| Link {
                href: href.clone(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            })
            .collect(),
        summary: entry.summary.map(Text::plain),
        content: Some(Content {
            value: Some(entry.html.clone().into_owned()),
            content_type: Some("html".into()),
            lang: Some(release.language.clone()).filter(|lang| !lang.is_empty()),
            ..Default::default()
        }),
        extensions,
        ..Default::default()
    }
}

fn fixed(time: DateTime<Utc>) -> FixedDateTime {
    time.fixed_offset()
}

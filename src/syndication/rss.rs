//! RSS 2.0, written with the `rss` crate: per item the headline as
//! `title`, the summary as `description`, the HTML body as
//! `content:encoded`, the link, the name as a `guid` that is not a
//! permalink, `pubDate`, channels and subjects as `category`, the issuer as
//! `dc:creator` (RSS's own `author` must be an e-mail address) and the
//! dateline as `dc:coverage`. RSS has no element for the update time. The
//! channel links to itself with `atom:link rel="self"`, as feed validators
//! recommend.

use rss::{
    Category, Channel, Guid, Item,
    extension::{atom::AtomExtension, dublincore::DublinCoreExtension},
};

use super::entry::{Entry, FeedInfo, xml_safe};

/// The feed as an RSS 2.0 document.
pub fn write(info: &FeedInfo, entries: &[Entry<'_>]) -> Result<String, rss::Error> {
    let items = entries.iter().map(item).collect();
    let channel = Channel {
        title: info.title.clone(),
        link: info.home_url.clone(),
        description: info.description.clone(),
        last_build_date: Some(info.updated.to_rfc2822()),
        generator: Some(super::GENERATOR.into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(AtomExtension {
            links: vec![atom_syndication::Link {
                href: info.self_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            }],
        }),
        items,
        ..Default::default()
    };
    let bytes = channel.write_to(Vec::new())?;
    Ok(xml_safe(bytes))
}

fn item(entry: &Entry<'_>) -> Item {
    let release = entry.release;
    let dublin_core = DublinCoreExtension {
        creators: entry.author.map(str::to_string).into_iter().collect(),
        coverages: entry.dateline.map(str::to_string).into_iter().collect(),
        ..Default::default()
    };
    Item {
        title: Some(release.headline.clone()),
        link: entry.link.clone(),
        description: entry.summary.map(str::to_string),
        content: Some(entry.html.clone().into_owned()),
        guid: Some(Guid {
            value: release.name.clone(),
            permalink: false,
        }),
        pub_date: Some(entry.published.to_rfc2822()),
        categories: entry
            .categories
            .iter()
            .map(|name| Category {
                name: (*name).to_string(),
                domain: None,
            })
            .collect(),
        dublin_core_ext: Some(dublin_core),
        ..Default::default()
    }
}

//! A deterministic generator of realistic press releases: the same seed
//! always gives the same releases. Bodies are 2–8 KB of plain text or HTML;
//! a few hundred issuers, each with a home country and sometimes tickers;
//! channels, subjects, industries, valid ISO 3166-1 country codes and valid
//! BCP-47 language tags, drawn with a skew so that some values are common
//! and others rare (as on a real wire). Every body names the wire
//! (`Benchwire`), so one search word matches every release.

pub mod vocabulary;

use pressroom::proto::{
    Timestamp,
    v1::{
        Contact, Dateline, MediaAsset, Organization, PressRelease, Source, Ticker,
        press_release::BodyFormat,
    },
};

use self::vocabulary::{
    ADJECTIVES, CHANNELS, CITIES, COUNTRIES, EXCHANGES, FIRST_NAMES, HEADLINE_VERBS, INDUSTRIES,
    LANGUAGES, LAST_NAMES, NAME_FORMS, NAME_HEADS, NAME_KINDS, NAME_TAILS, NOUNS, QUARTERS,
    SUBJECTS, VERBS,
};

/// The word every body contains; searching for it matches every release.
pub const WIRE: &str = "Benchwire";

/// A tiny seeded PRNG (splitmix64): fast, and plenty for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// Any element, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An index below `len`, small ones much more often than large ones
    /// (the square of a uniform number: the first tenth of the range gets
    /// about a third of the picks).
    pub fn skewed_index(&mut self, len: usize) -> usize {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (((u * u) * len as f64) as usize).min(len.saturating_sub(1))
    }

    /// An element, the first ones much more often than the last.
    pub fn skewed<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.skewed_index(items.len())]
    }
}

/// One issuer: a name, a web site, a home country, and its listings.
#[derive(Clone, Debug)]
pub struct Issuer {
    pub name: String,
    pub website: String,
    pub country: &'static str,
    pub tickers: Vec<Ticker>,
    pub industry: &'static str,
}

/// Makes press releases from a seed.
pub struct Generator {
    rng: Rng,
    issuers: Vec<Issuer>,
    /// Prefix of the sources' item ids, so that two generators with other
    /// names never collide.
    item_prefix: String,
    next_item: u64,
}

/// How many issuers there are.
pub const ISSUERS: usize = 300;

/// The publish times span two years from here (2023-11-14T22:13:20Z): fixed,
/// so that the data do not depend on the day the benchmark runs.
const FIRST_PUBLISH_SECONDS: i64 = 1_700_000_000;
const PUBLISH_SPAN_SECONDS: u64 = 2 * 365 * 24 * 3600;

impl Generator {
    /// A generator of releases whose source item ids start with `name`.
    pub fn new(seed: u64, name: &str) -> Self {
        // Issuers come from their own seed: every generator shares them, so
        // filters by issuer or ticker mean the same in every scenario.
        let mut rng = Rng::new(0x1550_e125);
        let issuers = (0..ISSUERS).map(|i| issuer(&mut rng, i)).collect();
        Self {
            rng: Rng::new(seed),
            issuers,
            item_prefix: name.to_string(),
            next_item: 0,
        }
    }

    /// The issuers, the most active first.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The next release, ready to create (no output-only fields set).
    pub fn release(&mut self) -> PressRelease {
        let rng = &mut self.rng;
        let issuer = self.issuers[rng.skewed_index(self.issuers.len())].clone();
        let country = if rng.chance(80) {
            issuer.country
        } else {
            rng.skewed(COUNTRIES)
        };
        let language = rng.skewed(LANGUAGES);
        let city = rng.pick(CITIES);
        let publish = Timestamp {
            seconds: FIRST_PUBLISH_SECONDS + (rng.next_u64() % PUBLISH_SPAN_SECONDS) as i64,
            nanos: (rng.next_u64() % 1_000_000_000) as i32,
        };
        let headline = headline(rng, &issuer.name);
        let html = rng.chance(30);
        let target_bytes = rng.between(2 * 1024, 8 * 1024);
        let body = body(rng, &issuer, city, html, target_bytes);
        let mut channels = vec![rng.skewed(CHANNELS).to_string()];
        for _ in 0..rng.below(3) {
            let channel = rng.skewed(CHANNELS).to_string();
            if !channels.contains(&channel) {
                channels.push(channel);
            }
        }
        let subjects = vec![rng.skewed(SUBJECTS).to_string()];
        let mut industries = vec![issuer.industry.to_string()];
        if rng.chance(20) {
            let other = rng.pick(INDUSTRIES).to_string();
            if !industries.contains(&other) {
                industries.push(other);
            }
        }
        let keywords = (0..rng.between(2, 5))
            .map(|_| rng.skewed(NOUNS).to_string())
            .collect();
        let contacts = (0..rng.between(1, 2))
            .map(|_| {
                let first = rng.pick(FIRST_NAMES);
                let last = rng.pick(LAST_NAMES);
                Contact {
                    name: format!("{first} {last}"),
                    organization: issuer.name.clone(),
                    email: format!("{}@{}", first.to_lowercase(), domain(&issuer.name)),
                    phone: format!("+1 555 {:04}", rng.below(10_000)),
                }
            })
            .collect();
        let media = (0..rng.below(3))
            .map(|i| MediaAsset {
                url: format!("https://media.{}/{i}.jpg", domain(&issuer.name)),
                mime_type: "image/jpeg".into(),
                caption: format!("{} {}", issuer.name, rng.pick(NOUNS)),
            })
            .collect();
        self.next_item += 1;
        PressRelease {
            source: Some(Source {
                provider: "benchwire".into(),
                item_id: format!("{}-{}", self.item_prefix, self.next_item),
                url: format!(
                    "https://benchwire.example.com/{}/{}",
                    self.item_prefix, self.next_item
                ),
                ..Default::default()
            }),
            summary: sentence(rng, &issuer.name),
            headline,
            body,
            body_format: if html {
                BodyFormat::Html
            } else {
                BodyFormat::PlainText
            } as i32,
            language: language.into(),
            dateline: Some(Dateline {
                text: format!("{city}, {}", month_day(&publish)),
                locality: city.to_string(),
                region: String::new(),
                country_code: country.into(),
            }),
            issuer: Some(Organization {
                name: issuer.name.clone(),
                website: issuer.website.clone(),
                tickers: issuer.tickers.clone(),
                ..Default::default()
            }),
            contacts,
            channels,
            subjects,
            industries,
            keywords,
            media,
            publish_time: Some(publish),
            ..Default::default()
        }
    }

    /// `count` releases.
    pub fn releases(&mut self, count: usize) -> Vec<PressRelease> {
        (0..count).map(|_| self.release()).collect()
    }
}

fn issuer(rng: &mut Rng, i: usize) -> Issuer {
    let name = format!(
        "{}{} {} {}",
        NAME_HEADS[i % NAME_HEADS.len()],
        NAME_TAILS[(i / NAME_HEADS.len()) % NAME_TAILS.len()],
        rng.pick(NAME_KINDS),
        rng.pick(NAME_FORMS)
    );
    let tickers = if rng.chance(60) {
        let symbol: String = name
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(3)
            .collect::<String>()
            .to_uppercase()
            + &format!("{}", i % 10);
        let mut tickers = vec![Ticker {
            exchange: rng.pick(EXCHANGES).to_string(),
            symbol: symbol.clone(),
        }];
        if rng.chance(15) {
            tickers.push(Ticker {
                exchange: rng.pick(EXCHANGES).to_string(),
                symbol,
            });
        }
        tickers
    } else {
        Vec::new()
    };
    Issuer {
        website: format!("https://www.{}", domain(&name)),
        country: rng.skewed(COUNTRIES),
        industry: rng.skewed(INDUSTRIES),
        tickers,
        name,
    }
}

/// A made-up domain for an organization name.
fn domain(name: &str) -> String {
    let stem: String = name
        .split_whitespace()
        .take(2)
        .collect::<String>()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("{}.example.com", stem.to_lowercase())
}

fn headline(rng: &mut Rng, issuer: &str) -> String {
    let verb = rng.pick(HEADLINE_VERBS);
    let adjective = capitalised(rng.skewed(ADJECTIVES));
    let noun = capitalised(rng.skewed(NOUNS));
    match rng.below(3) {
        0 => format!("{issuer} {verb} {adjective} {noun}"),
        1 => format!(
            "{issuer} {verb} {} Quarter {noun}",
            capitalised(rng.pick(QUARTERS))
        ),
        _ => format!(
            "{issuer} {verb} {adjective} {noun} in {}",
            capitalised(&rng.pick(CITIES).to_lowercase())
        ),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One sentence of the body.
fn sentence(rng: &mut Rng, issuer: &str) -> String {
    let a = rng.skewed(ADJECTIVES);
    let n1 = rng.skewed(NOUNS);
    let n2 = rng.skewed(NOUNS);
    let v = rng.skewed(VERBS);
    match rng.below(6) {
        0 => format!("{issuer} {v} a {a} {n1} that will support its {n2} across the region."),
        1 => format!(
            "The {n1} {v} {}% over the {} quarter, driven by {a} {n2}.",
            rng.between(2, 40),
            rng.pick(QUARTERS)
        ),
        2 => format!("\"Our {a} {n1} gives customers a better {n2},\" said the chief executive."),
        3 => format!(
            "Analysts expect the {n1} to reach {} million by {}, as demand for {a} {n2} grows.",
            rng.between(10, 900),
            rng.between(2026, 2032)
        ),
        4 => format!(
            "The company {v} its {n1} and its {a} {n2} with partners in {} countries.",
            rng.between(3, 60)
        ),
        _ => {
            format!("Further details on the {a} {n1} and the {n2} will follow in the coming weeks.")
        }
    }
}

fn body(rng: &mut Rng, issuer: &Issuer, city: &str, html: bool, target: usize) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut size = 0;
    let lead = format!(
        "{city} /{WIRE}/ -- {} {}",
        issuer.name,
        sentence(rng, &issuer.name)
    );
    size += lead.len();
    paragraphs.push(lead);
    while size < target.saturating_sub(400) {
        let sentences = rng.between(3, 6);
        let paragraph = (0..sentences)
            .map(|_| sentence(rng, &issuer.name))
            .collect::<Vec<_>>()
            .join(" ");
        size += paragraph.len() + 8;
        paragraphs.push(paragraph);
    }
    let about = format!(
        "About {}: {} is a {} company headquartered in {}. More at {}.",
        issuer.name,
        issuer.name,
        issuer.industry.to_lowercase(),
        issuer.country,
        issuer.website
    );
    if html {
        let mut out = String::with_capacity(target + 512);
        for (i, paragraph) in paragraphs.iter().enumerate() {
            if i == 2 {
                out.push_str("<ul><li>Highlights of the ");
                out.push_str(rng.skewed(NOUNS));
                out.push_str("</li><li><strong>");
                out.push_str(rng.skewed(ADJECTIVES));
                out.push_str("</strong> growth</li></ul>\n");
            }
            out.push_str("<p>");
            out.push_str(&html_text(paragraph));
            out.push_str("</p>\n");
        }
        out.push_str(&format!(
            "<p><em>{}</em> <a href=\"{}\">{}</a></p>",
            html_text(&about),
            issuer.website,
            issuer.website
        ));
        out
    } else {
        paragraphs.push(about);
        paragraphs.join("\n\n")
    }
}

/// Escapes text for HTML (what the sanitiser would keep as it is).
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn month_day(time: &Timestamp) -> String {
    const MONTHS: &[&str] = &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    // Good enough for a dateline: 30-day months from the epoch.
    let days = time.seconds / 86_400;
    let month = MONTHS[((days / 30) % 12) as usize];
    format!("{month} {}", days % 30 + 1)
}

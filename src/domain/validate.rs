//! Checks and normalises the content of a press release: required fields,
//! lengths, codes (BCP-47 languages, ISO 3166-1 countries), URLs, and HTML
//! sanitising. Every problem found is reported, each naming its field, so a
//! caller can fix a request in one round trip.

use crate::proto::Timestamp;

use super::{DomainError, FieldViolation};
use crate::proto::v1::{PressRelease, SecurityIdentifier, press_release::BodyFormat};
use crate::text::shown;

/// Longest headline or subheadline, in characters.
pub const MAX_HEADLINE_CHARS: usize = 1_000;
/// Longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 10_000;
/// Longest body, in UTF-8 bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most values in a repeated field.
pub const MAX_VALUES: usize = 100;
/// Longest short text value (a channel, a name, an id), in characters.
pub const MAX_SHORT_CHARS: usize = 256;
/// Longest URL, in bytes.
const MAX_URL_BYTES: usize = 2_048;
/// Most `&` or `<` in an HTML body: sanitising costs grow faster than
/// linearly with character references (about 1 s for 320,000 `&` in a
/// release build), and real bodies have a few hundred.
pub const MAX_HTML_MARKUP: usize = 65_536;
/// Most passes of the sanitiser before its output must have settled.
const SANITISE_PASSES: usize = 4;

/// Sanitises HTML until the sanitiser no longer changes it, so that
/// sanitising what is stored changes nothing (an update that does not name
/// the body leaves it as it is). Carriage returns are made line feeds, as
/// parsing the stored body again would.
pub fn sanitise_html(html: &str) -> Option<String> {
    let mut current = html.to_string();
    for _ in 0..SANITISE_PASSES {
        let next = ammonia::clean(&current)
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        if next == current {
            return Some(current);
        }
        current = next;
    }
    None
}

/// Collects field violations.
#[derive(Default)]
pub(crate) struct Violations(Vec<FieldViolation>);

impl Violations {
    pub(crate) fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub(crate) fn into_result(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::InvalidArgument(self.0))
        }
    }

    /// A single-line text value: no control characters, at most `max` chars.
    pub(crate) fn line(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
        let chars = value.chars().count();
        if chars > max {
            self.add(
                field,
                format!("must be at most {max} characters, got {chars}"),
            );
        }
    }

    /// A repeated single-line value: at most [`MAX_VALUES`] non-blank values.
    pub(crate) fn values(&mut self, field: &str, values: &[String]) {
        if values.len() > MAX_VALUES {
            self.add(
                field,
                format!(
                    "must have at most {MAX_VALUES} values, got {}",
                    values.len()
                ),
            );
        }
        for (i, value) in values.iter().enumerate() {
            let field = format!("{field}[{i}]");
            if value.trim().is_empty() {
                self.add(&field, "must not be blank");
            }
            self.line(&field, value, MAX_SHORT_CHARS);
        }
    }

    /// A protobuf timestamp within 0001-01-01 and 9999-12-31.
    pub(crate) fn timestamp(&mut self, field: &str, time: Option<&Timestamp>) {
        if let Some(time) = time
            && !is_valid_time(time)
        {
            self.add(
                field,
                "must be a valid timestamp between 0001-01-01 and 9999-12-31",
            );
        }
    }

    /// A BCP-47 language tag.
    pub(crate) fn language(&mut self, field: &str, tag: &str) {
        if oxilangtag::LanguageTag::parse(tag).is_err() {
            self.add(
                field,
                format!(
                    "must be a BCP-47 language tag such as `en-GB`, got {}",
                    shown(tag)
                ),
            );
        }
    }

    /// An ISO 3166-1 alpha-2 country code (any case).
    pub(crate) fn country(&mut self, field: &str, code: &str) {
        if !is_country_code(code) {
            self.add(
                field,
                format!(
                    "must be an ISO 3166-1 alpha-2 country code such as `GB`, got {}",
                    shown(code)
                ),
            );
        }
    }

    fn url(&mut self, field: &str, value: &str) {
        if value.len() > MAX_URL_BYTES {
            self.add(field, format!("must be at most {MAX_URL_BYTES} bytes"));
            return;
        }
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => self.add(
                field,
                format!("must be an http or https URL, got {}", shown(value)),
            ),
        }
    }
}

/// Security identifier schemes a press release may name.
pub const SECURITY_SCHEMES: [&str; 5] = ["ISIN", "CUSIP", "SEDOL", "FIGI", "LEI"];

/// Checks security identifiers and makes scheme and value upper case.
fn securities(v: &mut Violations, field: &str, securities: &mut [SecurityIdentifier]) {
    if securities.len() > MAX_VALUES {
        v.add(field, format!("must have at most {MAX_VALUES} values"));
    }
    for (i, security) in securities.iter_mut().enumerate() {
        security.scheme = security.scheme.trim().to_ascii_uppercase();
        security.value = security.value.trim().to_ascii_uppercase();
        let at = |name: &str| format!("{field}[{i}].{name}");
        if !SECURITY_SCHEMES.contains(&security.scheme.as_str()) {
            v.add(
                at("scheme"),
                format!(
                    "must be one of {}, got {}",
                    SECURITY_SCHEMES.join(", "),
                    shown(&security.scheme)
                ),
            );
        }
        if security.value.is_empty() {
            v.add(at("value"), "is required");
        }
        v.line(&at("value"), &security.value, 32);
        if security.scheme == "ISIN" && !is_isin(&security.value) {
            v.add(
                at("value"),
                format!(
                    "must be an ISIN (two letters, nine characters, a check digit), got {}",
                    shown(&security.value)
                ),
            );
        }
    }
}

/// Whether `text` is an ISIN (ISO 6166): a country prefix of two letters,
/// nine letters or digits, and the Luhn check digit over the letters
/// expanded to numbers.
pub fn is_isin(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 12
        || !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..11]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        || !bytes[11].is_ascii_digit()
    {
        return false;
    }
    let mut digits = Vec::with_capacity(24);
    for &b in bytes {
        if b.is_ascii_digit() {
            digits.push(u32::from(b - b'0'));
        } else {
            let n = u32::from(b - b'A') + 10;
            digits.push(n / 10);
            digits.push(n % 10);
        }
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether a timestamp is one protobuf allows.
pub fn is_valid_time(time: &Timestamp) -> bool {
    (-62_135_596_800..=253_402_300_799).contains(&time.seconds)
        && (0..1_000_000_000).contains(&time.nanos)
}

fn is_country_code(code: &str) -> bool {
    let upper = code.to_ascii_uppercase();
    // Kosovo's code is user-assigned, but wires use it.
    upper.len() == 2 && (upper == "XK" || isocountry::CountryCode::for_alpha2(&upper).is_ok())
}

/// Checks the content fields of `release` (not its output-only fields) and
/// normalises them in place: HTML bodies sanitised, an unspecified body
/// format made plain text, country codes upper-cased. Violations name the
/// fields under `press_release`, the request field that holds the release
/// in every request that carries one.
pub fn check_content(release: &mut PressRelease) -> Result<(), DomainError> {
    let mut v = Violations::default();
    let field = |name: &str| format!("press_release.{name}");

    if release.headline.trim().is_empty() {
        v.add(field("headline"), "is required");
    }
    v.line(&field("headline"), &release.headline, MAX_HEADLINE_CHARS);
    v.line(
        &field("subheadline"),
        &release.subheadline,
        MAX_HEADLINE_CHARS,
    );
    let summary_chars = release.summary.chars().count();
    if summary_chars > MAX_SUMMARY_CHARS {
        v.add(
            field("summary"),
            format!("must be at most {MAX_SUMMARY_CHARS} characters, got {summary_chars}"),
        );
    }

    let format = BodyFormat::try_from(release.body_format).unwrap_or_else(|_| {
        v.add(
            field("body_format"),
            format!("unknown value {}", release.body_format),
        );
        BodyFormat::PlainText
    });
    let format = match format {
        BodyFormat::Unspecified => BodyFormat::PlainText,
        other => other,
    };
    release.body_format = format as i32;
    let markup = |c: char| release.body.chars().filter(|&b| b == c).count();
    if release.body.len() > MAX_BODY_BYTES {
        v.add(
            field("body"),
            format!(
                "must be at most {MAX_BODY_BYTES} bytes, got {}",
                release.body.len()
            ),
        );
    } else if format == BodyFormat::Html
        && (markup('&') > MAX_HTML_MARKUP || markup('<') > MAX_HTML_MARKUP)
    {
        v.add(
            field("body"),
            format!(
                "an HTML body may hold at most {MAX_HTML_MARKUP} `&` and {MAX_HTML_MARKUP} `<`"
            ),
        );
    } else {
        if format == BodyFormat::Html {
            match sanitise_html(&release.body) {
                Some(clean) => release.body = clean,
                None => v.add(field("body"), "the HTML does not settle when sanitised"),
            }
            if release.body.len() > MAX_BODY_BYTES {
                v.add(
                    field("body"),
                    format!(
                        "must be at most {MAX_BODY_BYTES} bytes once sanitised, got {}",
                        release.body.len()
                    ),
                );
            }
        }
        if release.body.trim().is_empty() {
            v.add(
                field("body"),
                if format == BodyFormat::Html {
                    "is required (and must keep some content once sanitised)"
                } else {
                    "is required"
                },
            );
        }
    }

    if !release.language.is_empty() {
        v.language(&field("language"), &release.language);
    }

    if let Some(source) = &release.source {
        let (provider, item) = (field("source.provider"), field("source.item_id"));
        v.line(&provider, &source.provider, MAX_SHORT_CHARS);
        v.line(&item, &source.item_id, MAX_SHORT_CHARS);
        match (source.provider.is_empty(), source.item_id.is_empty()) {
            (false, true) => v.add(item, "is required when source.provider is set"),
            (true, false) => v.add(provider, "is required when source.item_id is set"),
            _ => {}
        }
        if !source.url.is_empty() {
            v.url(&field("source.url"), &source.url);
        }
        if source.version < 0 {
            v.add(field("source.version"), "must not be negative");
        }
    }

    if let Some(dateline) = &mut release.dateline {
        v.line(&field("dateline.text"), &dateline.text, MAX_SHORT_CHARS);
        v.line(
            &field("dateline.locality"),
            &dateline.locality,
            MAX_SHORT_CHARS,
        );
        v.line(&field("dateline.region"), &dateline.region, MAX_SHORT_CHARS);
        if !dateline.country_code.is_empty() {
            v.country(&field("dateline.country_code"), &dateline.country_code);
            dateline.country_code = dateline.country_code.to_ascii_uppercase();
        }
    }

    if let Some(issuer) = &release.issuer {
        v.line(&field("issuer.name"), &issuer.name, MAX_SHORT_CHARS);
        if !issuer.website.is_empty() {
            v.url(&field("issuer.website"), &issuer.website);
        }
        if issuer.tickers.len() > MAX_VALUES {
            v.add(
                field("issuer.tickers"),
                format!("must have at most {MAX_VALUES} values"),
            );
        }
        for (i, ticker) in issuer.tickers.iter().enumerate() {
            let symbol = field(&format!("issuer.tickers[{i}].symbol"));
            let exchange = field(&format!("issuer.tickers[{i}].exchange"));
            if ticker.symbol.trim().is_empty() {
                v.add(&symbol, "is required");
            }
            v.line(&symbol, &ticker.symbol, 32);
            v.line(&exchange, &ticker.exchange, 32);
            if ticker.exchange.contains(':') {
                v.add(exchange, "must not contain `:`");
            }
        }
    }

    if let Some(issuer) = &mut release.issuer {
        securities(&mut v, &field("issuer.securities"), &mut issuer.securities);
    }

    if release.contacts.len() > MAX_VALUES {
        v.add(
            field("contacts"),
            format!("must have at most {MAX_VALUES} values"),
        );
    }
    for (i, contact) in release.contacts.iter().enumerate() {
        let at = |name: &str| field(&format!("contacts[{i}].{name}"));
        v.line(&at("name"), &contact.name, MAX_SHORT_CHARS);
        v.line(&at("organization"), &contact.organization, MAX_SHORT_CHARS);
        v.line(&at("email"), &contact.email, MAX_SHORT_CHARS);
        v.line(&at("phone"), &contact.phone, MAX_SHORT_CHARS);
        if !contact.email.is_empty()
            && (!contact.email.contains('@') || contact.email.contains(char::is_whitespace))
        {
            v.add(
                at("email"),
                format!("must be an email address, got {}", shown(&contact.email)),
            );
        }
    }

    v.values(&field("channels"), &release.channels);
    v.values(&field("subjects"), &release.subjects);
    v.values(&field("industries"), &release.industries);
    v.values(&field("keywords"), &release.keywords);

    if release.media.len() > MAX_VALUES {
        v.add(
            field("media"),
            format!("must have at most {MAX_VALUES} values"),
        );
    }
    for (i, media) in release.media.iter().enumerate() {
        let at = |name: &str| field(&format!("media[{i}].{name}"));
        if media.url.is_empty() {
            v.add(at("url"), "is required");
        } else {
            v.url(&at("url"), &media.url);
        }
        v.line(&at("mime_type"), &media.mime_type, 128);
        v.line(&at("caption"), &media.caption, MAX_HEADLINE_CHARS);
    }

    v.timestamp(&field("publish_time"), release.publish_time.as_ref());
    v.timestamp(&field("embargo_time"), release.embargo_time.as_ref());
    v.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> PressRelease {
        PressRelease {
            headline: "Acme ships".into(),
            body: "It ships.".into(),
            ..Default::default()
        }
    }

    fn fields(result: Result<(), DomainError>) -> Vec<String> {
        match result {
            Err(DomainError::InvalidArgument(violations)) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn sanitises_html_and_keeps_markup() {
        let mut release = valid();
        release.body_format = BodyFormat::Html as i32;
        release.body =
            r#"<p onclick="steal()">Hello <b>world</b><script>alert(1)</script></p>"#.into();
        assert!(check_content(&mut release).is_ok());
        assert_eq!(release.body, "<p>Hello <b>world</b></p>");
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let mut release = PressRelease {
            headline: "x".repeat(1_001),
            language: "not a tag!".into(),
            dateline: Some(crate::proto::v1::Dateline {
                country_code: "QQ".into(),
                ..Default::default()
            }),
            channels: vec![" ".into()],
            ..Default::default()
        };
        assert_eq!(
            fields(check_content(&mut release)),
            [
                "press_release.headline",
                "press_release.body",
                "press_release.language",
                "press_release.dateline.country_code",
                "press_release.channels[0]",
            ]
        );
    }

    #[test]
    fn isins_are_checked_by_their_check_digit() {
        // Real ISINs: Peapack-Gladstone (Nasdaq:PGC), Ebix, Huntington Ingalls.
        for isin in ["US7046991078", "US2787152063", "US4464131063"] {
            assert!(is_isin(isin), "{isin}");
        }
        for wrong in ["US7046991079", "us7046991078", "US70469910", "1S7046991078"] {
            assert!(!is_isin(wrong), "{wrong}");
        }
        let mut release = valid();
        release.issuer = Some(crate::proto::v1::Organization {
            securities: vec![
                SecurityIdentifier {
                    scheme: "isin".into(),
                    value: "us7046991078".into(),
                },
                SecurityIdentifier {
                    scheme: "ISIN".into(),
                    value: "US7046991079".into(),
                },
                SecurityIdentifier {
                    scheme: "WKN".into(),
                    value: "A0B1C2".into(),
                },
            ],
            ..Default::default()
        });
        assert_eq!(
            fields(check_content(&mut release)),
            [
                "press_release.issuer.securities[1].value",
                "press_release.issuer.securities[2].scheme"
            ]
        );
        let first = release
            .issuer
            .map(|i| i.securities[0].clone())
            .unwrap_or_default();
        assert_eq!(
            (first.scheme.as_str(), first.value.as_str()),
            ("ISIN", "US7046991078")
        );
    }

    #[test]
    fn normalises_codes_and_format() {
        let mut release = valid();
        release.language = "en-GB".into();
        release.dateline = Some(crate::proto::v1::Dateline {
            country_code: "az".into(),
            ..Default::default()
        });
        assert!(check_content(&mut release).is_ok());
        assert_eq!(release.body_format, BodyFormat::PlainText as i32);
        assert_eq!(
            release.dateline.map(|d| d.country_code).as_deref(),
            Some("AZ")
        );
    }
}

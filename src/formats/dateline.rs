//! Datelines: where a story was filed, as the wires print it at the top of
//! the body (`BEDMINSTER, N.J., Oct. 05, 2026 (GLOBE NEWSWIRE) --`,
//! `WILMINGTON, Del.--(BUSINESS WIRE)--`, `NEW YORK, Oct. 5, 2026
//! /PRNewswire/ --`, `Berlin (dpa) -`) or as a format carries it
//! (`KANSAS CITY, Mo.`). The printed text is kept; the city, the region and
//! the country are filled in only where they can be known: AP-style and
//! postal US state names, Canadian provinces, ISO country names and common
//! aliases, and a short list of cities that stand alone in a dateline.

use crate::proto::v1::Dateline;

/// A dateline found in the lead of a body, and the wire that marks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lead {
    /// The dateline.
    pub dateline: Dateline,
    /// The wire named in the lead, e.g. `GlobeNewswire`.
    pub wire: &'static str,
}

/// Wire credits that end a dateline in the lead, and the wire each names.
const MARKERS: [(&str, &str); 16] = [
    ("(GLOBE NEWSWIRE)", "GlobeNewswire"),
    ("--(BUSINESS WIRE)--", "Business Wire"),
    ("(BUSINESS WIRE)", "Business Wire"),
    ("/PRNewswire/", "PR Newswire"),
    ("/PRNewswire-", "PR Newswire"),
    ("/PRNewswire", "PR Newswire"),
    ("/CNW/", "Cision Canada"),
    ("(ACCESSWIRE)", "ACCESSWIRE"),
    ("(ACCESS Newswire)", "ACCESS Newswire"),
    ("(Marketwired)", "Marketwired"),
    ("(Newsfile Corp.", "Newsfile"),
    ("/EINPresswire.com/", "EIN Presswire"),
    ("(dpa)", "dpa"),
    ("(Reuters)", "Reuters"),
    ("(AP)", "AP"),
    ("(AFP)", "AFP"),
];

/// How far into the body a dateline may end, in characters.
const LEAD_CHARS: usize = 240;

/// The dateline at the start of `text` (plain text, the body's lead), when a
/// wire credit marks where it ends.
pub fn from_lead(text: &str) -> Option<Lead> {
    let lead: String = text.chars().take(LEAD_CHARS + 32).collect();
    let (at, wire) = MARKERS
        .iter()
        .filter_map(|(marker, wire)| lead.find(marker).map(|at| (at, *wire)))
        .min_by_key(|(at, _)| *at)?;
    if at == 0 || lead[..at].chars().count() > LEAD_CHARS {
        return None;
    }
    let dateline = from_printed(&lead[..at]);
    (!dateline.text.is_empty()).then_some(Lead { dateline, wire })
}

/// Reads a printed dateline: `KANSAS CITY, Mo.`, `MOSCOW, Monday
/// (Reuters)`, `New York (dpa) - `, `HOUSTON, April 01, 2024`.
pub fn from_printed(printed: &str) -> Dateline {
    let mut text = collapse(printed);
    loop {
        let before = text.len();
        text = text
            .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '—' | '–' | ','))
            .to_string();
        if text.ends_with(')')
            && let Some(open) = text.rfind('(')
        {
            text.truncate(open);
        }
        if text.len() == before {
            break;
        }
    }
    let mut parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| is_date_part(p)) {
        parts.pop();
    }
    let mut dateline = Dateline {
        text: text.clone(),
        ..Default::default()
    };
    let Some((first, rest)) = parts.split_first() else {
        return dateline;
    };
    if is_date_part(first) {
        return dateline;
    }
    if rest.is_empty()
        && let Some(code) = country_code(first)
    {
        // `AZERBAIJAN, February 8`: a country alone.
        dateline.country_code = code;
        return dateline;
    }
    dateline.locality = title_case(first);
    for part in rest {
        if let Some((region, country)) = region(part) {
            if dateline.region.is_empty() {
                dateline.region = region.to_string();
            }
            dateline.country_code = country.to_string();
        } else if let Some(code) = country_code(part) {
            dateline.country_code = code;
        } else if dateline.region.is_empty() {
            dateline.region = title_case(part);
        }
    }
    if dateline.country_code.is_empty()
        && let Some(code) = standalone_city(first)
    {
        dateline.country_code = code.to_string();
    }
    dateline
}

/// A date or weekday in a dateline: `Oct. 05`, `2026`, `Monday`, `8 Feb`.
fn is_date_part(part: &str) -> bool {
    let words: Vec<&str> = part.split_whitespace().collect();
    let month = |w: &str| super::dates::month(w.trim_end_matches('.')).is_some();
    let number = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
    let weekday = |w: &str| {
        let w = w.to_ascii_lowercase();
        [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .contains(&w.as_str())
    };
    match words.as_slice() {
        [one] => (number(one) && one.len() == 4) || weekday(one),
        [a, b] => (month(a) && number(b)) || (number(a) && month(b)),
        _ => false,
    }
}

/// Whitespace runs made one space.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `BEDMINSTER` → `Bedminster`; text that has lower case already is kept.
pub fn title_case(text: &str) -> String {
    if text.chars().any(char::is_lowercase) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphanumeric() && c != '\'';
    }
    out
}

/// US states (name, AP abbreviation, postal code) and Canadian provinces.
const REGIONS: [(&str, &str, &str, &str); 65] = [
    ("Alabama", "Ala.", "AL", "US"),
    ("Alaska", "Alaska", "AK", "US"),
    ("Arizona", "Ariz.", "AZ", "US"),
    ("Arkansas", "Ark.", "AR", "US"),
    ("California", "Calif.", "CA", "US"),
    ("Colorado", "Colo.", "CO", "US"),
    ("Connecticut", "Conn.", "CT", "US"),
    ("Delaware", "Del.", "DE", "US"),
    ("District of Columbia", "D.C.", "DC", "US"),
    ("Florida", "Fla.", "FL", "US"),
    ("Georgia", "Ga.", "GA", "US"),
    ("Hawaii", "Hawaii", "HI", "US"),
    ("Idaho", "Idaho", "ID", "US"),
    ("Illinois", "Ill.", "IL", "US"),
    ("Indiana", "Ind.", "IN", "US"),
    ("Iowa", "Iowa", "IA", "US"),
    ("Kansas", "Kan.", "KS", "US"),
    ("Kentucky", "Ky.", "KY", "US"),
    ("Louisiana", "La.", "LA", "US"),
    ("Maine", "Maine", "ME", "US"),
    ("Maryland", "Md.", "MD", "US"),
    ("Massachusetts", "Mass.", "MA", "US"),
    ("Michigan", "Mich.", "MI", "US"),
    ("Minnesota", "Minn.", "MN", "US"),
    ("Mississippi", "Miss.", "MS", "US"),
    ("Missouri", "Mo.", "MO", "US"),
    ("Montana", "Mont.", "MT", "US"),
    ("Nebraska", "Neb.", "NE", "US"),
    ("Nevada", "Nev.", "NV", "US"),
    ("New Hampshire", "N.H.", "NH", "US"),
    ("New Jersey", "N.J.", "NJ", "US"),
    ("New Mexico", "N.M.", "NM", "US"),
    ("New York", "N.Y.", "NY", "US"),
    ("North Carolina", "N.C.", "NC", "US"),
    ("North Dakota", "N.D.", "ND", "US"),
    ("Ohio", "Ohio", "OH", "US"),
    ("Oklahoma", "Okla.", "OK", "US"),
    ("Oregon", "Ore.", "OR", "US"),
    ("Pennsylvania", "Pa.", "PA", "US"),
    ("Rhode Island", "R.I.", "RI", "US"),
    ("South Carolina", "S.C.", "SC", "US"),
    ("South Dakota", "S.D.", "SD", "US"),
    ("Tennessee", "Tenn.", "TN", "US"),
    ("Texas", "Texas", "TX", "US"),
    ("Utah", "Utah", "UT", "US"),
    ("Vermont", "Vt.", "VT", "US"),
    ("Virginia", "Va.", "VA", "US"),
    ("Washington", "Wash.", "WA", "US"),
    ("West Virginia", "W.Va.", "WV", "US"),
    ("Wisconsin", "Wis.", "WI", "US"),
    ("Wyoming", "Wyo.", "WY", "US"),
    ("Puerto Rico", "P.R.", "PR", "US"),
    ("Alberta", "Alta.", "AB", "CA"),
    ("British Columbia", "B.C.", "BC", "CA"),
    ("Manitoba", "Man.", "MB", "CA"),
    ("New Brunswick", "N.B.", "NB", "CA"),
    ("Newfoundland and Labrador", "N.L.", "NL", "CA"),
    ("Nova Scotia", "N.S.", "NS", "CA"),
    ("Ontario", "Ont.", "ON", "CA"),
    ("Prince Edward Island", "P.E.I.", "PE", "CA"),
    ("Quebec", "Que.", "QC", "CA"),
    ("Saskatchewan", "Sask.", "SK", "CA"),
    ("Northwest Territories", "N.W.T.", "NT", "CA"),
    ("Nunavut", "Nunavut", "NU", "CA"),
    ("Yukon", "Yukon", "YT", "CA"),
];

/// A US state or Canadian province, by name, AP abbreviation or postal
/// code: its full name and country.
fn region(part: &str) -> Option<(&'static str, &'static str)> {
    let squeezed: String = part.chars().filter(|c| !c.is_whitespace()).collect();
    REGIONS
        .iter()
        .find(|(name, ap, postal, _)| {
            name.eq_ignore_ascii_case(part)
                || ap.eq_ignore_ascii_case(&squeezed)
                || (squeezed.len() == 2 && *postal == squeezed)
        })
        .map(|(name, _, _, country)| (*name, *country))
}

/// Country names wires use that are not ISO's.
const COUNTRY_ALIASES: [(&str, &str); 30] = [
    ("United States", "US"),
    ("U.S.", "US"),
    ("U.S.A.", "US"),
    ("USA", "US"),
    ("UK", "GB"),
    ("U.K.", "GB"),
    ("United Kingdom", "GB"),
    ("Great Britain", "GB"),
    ("Britain", "GB"),
    ("England", "GB"),
    ("Scotland", "GB"),
    ("Wales", "GB"),
    ("Northern Ireland", "GB"),
    ("Russia", "RU"),
    ("South Korea", "KR"),
    ("Korea", "KR"),
    ("Taiwan", "TW"),
    ("Vietnam", "VN"),
    ("Iran", "IR"),
    ("Czech Republic", "CZ"),
    ("UAE", "AE"),
    ("U.A.E.", "AE"),
    ("The Netherlands", "NL"),
    ("Holland", "NL"),
    ("Grand Cayman", "KY"),
    ("Bolivia", "BO"),
    ("Venezuela", "VE"),
    ("Tanzania", "TZ"),
    ("Deutschland", "DE"),
    ("Kosovo", "XK"),
];

/// The ISO 3166-1 alpha-2 code of a country named in a dateline.
pub fn country_code(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if let Some((_, code)) = COUNTRY_ALIASES
        .iter()
        .find(|(alias, _)| alias.trim_end_matches('.').eq_ignore_ascii_case(name))
    {
        return Some((*code).to_string());
    }
    isocountry::CountryCode::iter()
        .find(|code| code.name().eq_ignore_ascii_case(name))
        .map(|code| code.alpha2().to_string())
}

/// Cities that stand alone in a dateline (AP style), with their country.
const STANDALONE: [(&str, &str); 52] = [
    ("Atlanta", "US"),
    ("Baltimore", "US"),
    ("Boston", "US"),
    ("Chicago", "US"),
    ("Cincinnati", "US"),
    ("Cleveland", "US"),
    ("Dallas", "US"),
    ("Denver", "US"),
    ("Detroit", "US"),
    ("Honolulu", "US"),
    ("Houston", "US"),
    ("Indianapolis", "US"),
    ("Las Vegas", "US"),
    ("Los Angeles", "US"),
    ("Miami", "US"),
    ("Milwaukee", "US"),
    ("Minneapolis", "US"),
    ("New Orleans", "US"),
    ("New York", "US"),
    ("Oklahoma City", "US"),
    ("Philadelphia", "US"),
    ("Phoenix", "US"),
    ("Pittsburgh", "US"),
    ("St. Louis", "US"),
    ("Salt Lake City", "US"),
    ("San Antonio", "US"),
    ("San Diego", "US"),
    ("San Francisco", "US"),
    ("Seattle", "US"),
    ("Washington", "US"),
    ("London", "GB"),
    ("Paris", "FR"),
    ("Berlin", "DE"),
    ("Frankfurt", "DE"),
    ("Munich", "DE"),
    ("Tokyo", "JP"),
    ("Toronto", "CA"),
    ("Montreal", "CA"),
    ("Vancouver", "CA"),
    ("Sydney", "AU"),
    ("Hong Kong", "HK"),
    ("Singapore", "SG"),
    ("Dubai", "AE"),
    ("Zurich", "CH"),
    ("Madrid", "ES"),
    ("Rome", "IT"),
    ("Amsterdam", "NL"),
    ("Stockholm", "SE"),
    ("Oslo", "NO"),
    ("Moscow", "RU"),
    ("Beijing", "CN"),
    ("Baku", "AZ"),
];

fn standalone_city(name: &str) -> Option<&'static str> {
    STANDALONE
        .iter()
        .find(|(city, _)| city.eq_ignore_ascii_case(name.trim()))
        .map(|(_, country)| *country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(d: &Dateline) -> (&str, &str, &str, &str) {
        (&d.text, &d.locality, &d.region, &d.country_code)
    }

    #[test]
    fn the_common_wire_patterns() {
        // Leads of real releases (GlobeNewswire as quoted in the issue and in
        // GlobeNewswire's feed of 2021-02-19; Business Wire's and PR
        // Newswire's as their feeds carried them).
        let cases = [
            (
                "BEDMINSTER, N.J., Oct. 05, 2026 (GLOBE NEWSWIRE) -- Peapack-Gladstone Financial",
                (
                    "BEDMINSTER, N.J., Oct. 05, 2026",
                    "Bedminster",
                    "New Jersey",
                    "US",
                ),
                "GlobeNewswire",
            ),
            (
                "JOHNS CREEK, Ga., Feb.  19, 2021  (GLOBE NEWSWIRE) -- Ebix, Inc. (NASDAQ: EBIX)",
                (
                    "JOHNS CREEK, Ga., Feb. 19, 2021",
                    "Johns Creek",
                    "Georgia",
                    "US",
                ),
                "GlobeNewswire",
            ),
            (
                "WASHINGTON, D.C., Feb.  19, 2021  (GLOBE NEWSWIRE) -- ",
                (
                    "WASHINGTON, D.C., Feb. 19, 2021",
                    "Washington",
                    "District of Columbia",
                    "US",
                ),
                "GlobeNewswire",
            ),
            (
                "Boulder, CO, Feb.  19, 2021  (GLOBE NEWSWIRE) -- “Let’s give",
                ("Boulder, CO, Feb. 19, 2021", "Boulder", "Colorado", "US"),
                "GlobeNewswire",
            ),
            (
                "HOUSTON, April  01, 2024  (GLOBE NEWSWIRE) -- Kayne Anderson",
                ("HOUSTON, April 01, 2024", "Houston", "", "US"),
                "GlobeNewswire",
            ),
            (
                "WILMINGTON, Del.--(BUSINESS WIRE)--Kroll Bond Rating Agency",
                ("WILMINGTON, Del.", "Wilmington", "Delaware", "US"),
                "Business Wire",
            ),
            (
                "SAN FRANCISCO & TEL AVIV, Israel--(BUSINESS WIRE)--Majestic Labs",
                (
                    "SAN FRANCISCO & TEL AVIV, Israel",
                    "San Francisco & Tel Aviv",
                    "",
                    "IL",
                ),
                "Business Wire",
            ),
            (
                "NEW YORK--(BUSINESS WIRE)-- The Law Offices of Vincent Wong",
                ("NEW YORK", "New York", "", "US"),
                "Business Wire",
            ),
            (
                "NEW YORK, Oct. 5, 2026 /PRNewswire/ -- B&R Technology",
                ("NEW YORK, Oct. 5, 2026", "New York", "", "US"),
                "PR Newswire",
            ),
            (
                "CARLSBAD, Calif., May 5, 2025 /PRNewswire/ -- Topgolf Callaway Brands",
                (
                    "CARLSBAD, Calif., May 5, 2025",
                    "Carlsbad",
                    "California",
                    "US",
                ),
                "PR Newswire",
            ),
            (
                "New York (dpa) - Ein Chatbot aus China schockt die Wall Street",
                ("New York", "New York", "", "US"),
                "dpa",
            ),
        ];
        for (lead, expected, wire) in cases {
            let found = from_lead(lead).unwrap_or_else(|| panic!("no dateline in {lead:?}"));
            assert_eq!(parts(&found.dateline), expected, "{lead}");
            assert_eq!(found.wire, wire, "{lead}");
        }
    }

    #[test]
    fn no_wire_credit_no_dateline() {
        assert_eq!(from_lead("Acme Corp today opened a factory in Baku."), None);
        assert_eq!(from_lead("(GLOBE NEWSWIRE) -- nothing before it"), None);
        let far = format!("{} (GLOBE NEWSWIRE) --", "word ".repeat(100));
        assert_eq!(from_lead(&far), None, "a credit deep in the text");
    }

    #[test]
    fn printed_datelines() {
        let cases = [
            (
                "KANSAS CITY, Mo.",
                ("KANSAS CITY, Mo.", "Kansas City", "Missouri", "US"),
            ),
            (
                "MOSCOW, Monday (Reuters)",
                ("MOSCOW, Monday", "Moscow", "", "RU"),
            ),
            ("Berlin (dpa) - ", ("Berlin", "Berlin", "", "DE")),
            (
                "AZERBAIJAN, February 8",
                ("AZERBAIJAN, February 8", "", "", "AZ"),
            ),
            (
                "TORONTO, Ont.",
                ("TORONTO, Ont.", "Toronto", "Ontario", "CA"),
            ),
            (
                "GEORGE TOWN, Grand Cayman, May 26, 2020",
                (
                    "GEORGE TOWN, Grand Cayman, May 26, 2020",
                    "George Town",
                    "",
                    "KY",
                ),
            ),
            ("LYON, France", ("LYON, France", "Lyon", "", "FR")),
        ];
        for (printed, expected) in cases {
            assert_eq!(parts(&from_printed(printed)), expected, "{printed}");
        }
    }
}

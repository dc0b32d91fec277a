//! Listings and security identifiers as wires write them: `EXCHANGE:SYMBOL`
//! categories (GlobeNewswire's `Nasdaq:PGC`, `Other OTC:ACCR`,
//! `TSX-V:CIT`), exchange-qualified symbols in the lead (`(NYSE: DIN)`,
//! `(Nasdaq: CSAI)`), and ISINs, recognised by their check digit.

use std::sync::LazyLock;

use regex::Regex;

use crate::{
    domain::validate::is_isin,
    proto::v1::{Organization, SecurityIdentifier, Ticker},
};

/// `EXCHANGE:SYMBOL` as a whole category term.
static CATEGORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z][A-Za-z0-9 .&\-]{0,30}):\s*([A-Za-z0-9][A-Za-z0-9.\-]{0,15})$")
        .unwrap_or_else(|e| unreachable!("a constant regex: {e}"))
});

/// `(NYSE: DIN)`, `(NASDAQ Global Select Market:PGC)`, `(OTCQB: BBLR)` in
/// running text: only exchanges wires name, so that `(Note: See)` is not a
/// listing.
static IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\((NASDAQ|Nasdaq|NYSE|NYSE American|NYSE Arca|NYSE MKT|AMEX|OTCQB|OTCQX|OTC|OTC Pink|TSX|TSX-V|TSXV|TSX Venture|CSE|LSE|AIM|ASX|Euronext|Nasdaq Stockholm|Nasdaq Helsinki|Nasdaq Copenhagen|Oslo Børs|SIX|XETRA)(?: [A-Za-z ]{1,30})?:\s?([A-Z][A-Z0-9.\-]{0,9})\)",
    )
    .unwrap_or_else(|e| unreachable!("a constant regex: {e}"))
});

/// A category term that is a listing: `Nasdaq:PGC` → NASDAQ / PGC.
pub fn ticker_from_category(term: &str) -> Option<Ticker> {
    let found = CATEGORY.captures(term.trim())?;
    let exchange = found[1].trim();
    // `urn:...` and the like are not exchanges.
    if matches!(
        exchange.to_ascii_lowercase().as_str(),
        "http" | "https" | "urn" | "mailto" | "tag"
    ) {
        return None;
    }
    Some(Ticker {
        exchange: exchange.to_ascii_uppercase(),
        symbol: found[2].to_ascii_uppercase(),
    })
}

/// Exchanges wires name in `EXCHANGE:SYMBOL` categories without saying the
/// category is a listing.
pub fn is_known_exchange(name: &str) -> bool {
    const KNOWN: [&str; 24] = [
        "NASDAQ",
        "NYSE",
        "NYSE AMERICAN",
        "NYSE ARCA",
        "AMEX",
        "OTC",
        "OTCQB",
        "OTCQX",
        "OTHER OTC",
        "TSX",
        "TSX-V",
        "TSXV",
        "CSE",
        "CNSX",
        "LSE",
        "AIM",
        "ASX",
        "EURONEXT",
        "PARIS",
        "XETRA",
        "SIX",
        "HKEX",
        "SGX",
        "NSE",
    ];
    KNOWN.contains(&name.trim().to_ascii_uppercase().as_str())
}

/// Listings named in running text, in order, without repeats.
pub fn tickers_in_text(text: &str) -> Vec<Ticker> {
    let mut found: Vec<Ticker> = Vec::new();
    for listing in IN_TEXT.captures_iter(text) {
        let exchange = match listing[1].to_ascii_uppercase().as_str() {
            "NASDAQ" => "NASDAQ".to_string(),
            other => other.to_string(),
        };
        let ticker = Ticker {
            exchange,
            symbol: listing[2].to_string(),
        };
        if !found.contains(&ticker) {
            found.push(ticker);
        }
    }
    found
}

/// An ISIN, upper case, if `term` is one.
pub fn isin(term: &str) -> Option<String> {
    let upper = term.trim().to_ascii_uppercase();
    is_isin(&upper).then_some(upper)
}

/// Adds a listing to an issuer unless it is there (same exchange and
/// symbol, ignoring case).
pub fn add_ticker(issuer: &mut Organization, ticker: Ticker) {
    let same = |t: &Ticker| {
        t.symbol.eq_ignore_ascii_case(&ticker.symbol)
            && t.exchange.eq_ignore_ascii_case(&ticker.exchange)
    };
    if !issuer.tickers.iter().any(same) {
        issuer.tickers.push(ticker);
    }
}

/// Adds an ISIN to an issuer unless it is there.
pub fn add_isin(issuer: &mut Organization, isin: String) {
    if !issuer
        .securities
        .iter()
        .any(|s| s.scheme == "ISIN" && s.value == isin)
    {
        issuer.securities.push(SecurityIdentifier {
            scheme: "ISIN".into(),
            value: isin,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(t: &Ticker) -> (&str, &str) {
        (&t.exchange, &t.symbol)
    }

    #[test]
    fn category_terms_that_are_listings() {
        // Terms of GlobeNewswire's rss/stock categories.
        for (term, expected) in [
            ("Nasdaq:PGC", ("NASDAQ", "PGC")),
            ("NYSE:HII", ("NYSE", "HII")),
            ("Other OTC:ACCR", ("OTHER OTC", "ACCR")),
            ("TSX-V:CIT", ("TSX-V", "CIT")),
            ("Paris:IPS", ("PARIS", "IPS")),
            ("CNSX:LION.CN", ("CNSX", "LION.CN")),
        ] {
            let ticker = ticker_from_category(term).unwrap_or_default();
            assert_eq!(pair(&ticker), expected, "{term}");
        }
        for not in [
            "Calendar of Events",
            "Law & Legal Issues",
            "https://example.com",
            "Note: see below",
        ] {
            assert_eq!(ticker_from_category(not), None, "{not}");
        }
    }

    #[test]
    fn listings_in_a_lead() {
        // From the leads of real releases (Ebix on GlobeNewswire; Applebee's
        // on Business Wire; Peapack-Gladstone).
        let found = tickers_in_text(
            "Ebix, Inc. (NASDAQ: EBIX), a leading international supplier ... \
             a DineEquity, Inc. (NYSE: DIN) brand ... Peapack-Gladstone Financial \
             Corporation (NASDAQ Global Select Market:PGC) ... (Note: See) (NYSE: DIN)",
        );
        let pairs: Vec<_> = found.iter().map(pair).collect();
        assert_eq!(
            pairs,
            [("NASDAQ", "EBIX"), ("NYSE", "DIN"), ("NASDAQ", "PGC")]
        );
    }

    #[test]
    fn isins_by_check_digit() {
        assert_eq!(isin("US7046991078").as_deref(), Some("US7046991078"));
        assert_eq!(isin(" us2787152063 ").as_deref(), Some("US2787152063"));
        assert_eq!(isin("US2787152064"), None);
        assert_eq!(isin("Calendar of Events"), None);
    }
}

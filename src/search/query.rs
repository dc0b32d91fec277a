//! The search query language, parsed into a small syntax tree with the
//! position of every part, so that a malformed query is reported with where
//! it goes wrong.
//!
//! - `solar panel`: plain words; all must match (in any text field).
//! - `"solar panel"`: an exact phrase (words in this order, stemmed).
//! - `solar OR wind`: either; `OR` (upper case) binds tighter than the
//!   implicit AND, so `acme solar OR wind` is `acme AND (solar OR wind)`.
//! - `-recall`: must not match.
//! - `headline:solar`, `body:"solar panel"`, `issuer:acme`, `summary:…`,
//!   `keywords:…`: only in that field.

/// A field that `field:value` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    /// `headline`.
    Headline,
    /// `subheadline` (searched by default, not nameable).
    Subheadline,
    /// `summary`.
    Summary,
    /// `body`.
    Body,
    /// `issuer` (the issuer's name).
    Issuer,
    /// `keywords`.
    Keywords,
}

impl TextField {
    /// Every text field, searched by plain words.
    pub const ALL: [TextField; 6] = [
        TextField::Headline,
        TextField::Subheadline,
        TextField::Summary,
        TextField::Body,
        TextField::Issuer,
        TextField::Keywords,
    ];

    fn named(name: &str) -> Option<Self> {
        match name {
            "headline" => Some(Self::Headline),
            "summary" => Some(Self::Summary),
            "body" => Some(Self::Body),
            "issuer" => Some(Self::Issuer),
            "keywords" | "keyword" => Some(Self::Keywords),
            _ => None,
        }
    }
}

/// One searched value: a word or a phrase, in one field or all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// `None`: every text field.
    pub field: Option<TextField>,
    /// The text to look for.
    pub text: String,
    /// Written in quotes: the words must appear in this order.
    pub phrase: bool,
    /// Where it starts in the query (0-based, in characters).
    pub position: usize,
}

/// A parsed query: every group must match and no excluded atom may.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Groups of alternatives (`a OR b`); each group must match.
    pub required: Vec<Vec<Atom>>,
    /// Atoms that must not match.
    pub excluded: Vec<Atom>,
}

/// What is wrong with a query, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct QueryError {
    /// 0-based, in characters.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, PartialEq)]
enum Token {
    Or,
    Atom { negated: bool, atom: Atom },
}

/// Parses a query.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let tokens = tokenize(text)?;
    let mut query = Query::default();
    let mut i = 0;
    while i < tokens.len() {
        let (position, token) = &tokens[i];
        match token {
            Token::Or => {
                return Err(error(*position, "`OR` must stand between two terms"));
            }
            Token::Atom {
                negated: true,
                atom,
            } => {
                if matches!(tokens.get(i + 1), Some((_, Token::Or))) {
                    return Err(error(*position, "an excluded term cannot be part of `OR`"));
                }
                query.excluded.push(atom.clone());
                i += 1;
            }
            Token::Atom {
                negated: false,
                atom,
            } => {
                let mut group = vec![atom.clone()];
                i += 1;
                while let Some((or_at, Token::Or)) = tokens.get(i) {
                    match tokens.get(i + 1) {
                        Some((
                            _,
                            Token::Atom {
                                negated: false,
                                atom,
                            },
                        )) => {
                            group.push(atom.clone());
                            i += 2;
                        }
                        Some((at, Token::Atom { negated: true, .. })) => {
                            return Err(error(*at, "an excluded term cannot be part of `OR`"));
                        }
                        _ => return Err(error(*or_at, "`OR` must stand between two terms")),
                    }
                }
                query.required.push(group);
            }
        }
    }
    if query.required.is_empty() {
        return Err(error(
            0,
            if query.excluded.is_empty() {
                "the query is empty"
            } else {
                "a query needs at least one term that is not excluded"
            },
        ));
    }
    Ok(query)
}

fn error(position: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        position,
        message: message.into(),
    }
}

/// Splits a query into `OR`s and (possibly negated, possibly fielded) atoms.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let negated = chars[i] == '-';
        if negated {
            i += 1;
            if i >= chars.len() || chars[i].is_whitespace() {
                return Err(error(start, "`-` must be followed by a term to exclude"));
            }
        }
        // An optional `field:` prefix: letters followed by a colon.
        let mut field = None;
        let name_end = (i..chars.len())
            .find(|&j| !chars[j].is_ascii_alphabetic())
            .unwrap_or(chars.len());
        if name_end > i && chars.get(name_end) == Some(&':') {
            let name: String = chars[i..name_end].iter().collect();
            field = Some(TextField::named(&name.to_lowercase()).ok_or_else(|| {
                error(
                    i,
                    format!(
                        "unknown field {}; use headline, body, issuer, summary or keywords",
                        crate::text::shown(&name)
                    ),
                )
            })?);
            i = name_end + 1;
            if i >= chars.len() || chars[i].is_whitespace() {
                return Err(error(
                    name_end,
                    format!(
                        "{} must be followed by a value",
                        crate::text::shown(&format!("{name}:"))
                    ),
                ));
            }
        }
        let atom_start = i;
        let (value, phrase) = if chars[i] == '"' {
            let close = (i + 1..chars.len())
                .find(|&j| chars[j] == '"')
                .ok_or_else(|| error(i, "this quote is never closed"))?;
            let value: String = chars[i + 1..close].iter().collect();
            if value.trim().is_empty() {
                return Err(error(i, "an empty phrase"));
            }
            i = close + 1;
            (value, true)
        } else {
            let end = (i..chars.len())
                .find(|&j| chars[j].is_whitespace() || chars[j] == '"')
                .unwrap_or(chars.len());
            let value: String = chars[i..end].iter().collect();
            i = end;
            (value, false)
        };
        if !negated && field.is_none() && !phrase && value == "OR" {
            tokens.push((start, Token::Or));
            continue;
        }
        tokens.push((
            start,
            Token::Atom {
                negated,
                atom: Atom {
                    field,
                    text: value,
                    phrase,
                    position: atom_start,
                },
            },
        ));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn atom(field: Option<TextField>, text: &str, phrase: bool, position: usize) -> Atom {
        Atom {
            field,
            text: text.into(),
            phrase,
            position,
        }
    }

    #[test]
    fn parses_the_documented_forms() -> Result<(), QueryError> {
        let query =
            parse(r#"acme "solar panel" wind OR tidal -recall headline:plant body:"new site""#)?;
        assert_eq!(
            query.required,
            vec![
                vec![atom(None, "acme", false, 0)],
                vec![atom(None, "solar panel", true, 5)],
                vec![
                    atom(None, "wind", false, 19),
                    atom(None, "tidal", false, 27)
                ],
                vec![atom(Some(TextField::Headline), "plant", false, 50)],
                vec![atom(Some(TextField::Body), "new site", true, 61)],
            ]
        );
        assert_eq!(query.excluded, vec![atom(None, "recall", false, 34)]);
        Ok(())
    }

    #[test]
    fn lower_case_or_and_colons_in_words_are_words() -> Result<(), QueryError> {
        let query = parse("this or that 10:30")?;
        assert_eq!(query.required.len(), 4);
        Ok(())
    }

    #[test]
    fn malformed_queries_say_where() {
        for (text, position) in [
            ("", 0),
            ("   ", 0),
            ("-only", 0),
            ("OR acme", 0),
            ("acme OR", 5),
            ("acme OR -wind", 8),
            ("-acme OR wind", 0),
            ("acme \"solar", 5),
            ("acme \"\"", 5),
            ("color:red", 0),
            ("acme - wind", 5),
            ("headline: acme", 8),
        ] {
            match parse(text) {
                Err(e) => assert_eq!(e.position, position, "{text:?}: {e}"),
                Ok(q) => panic!("{text:?} parsed as {q:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_errors_point_inside(text in "\\PC{0,40}") {
            if let Err(e) = parse(&text) {
                prop_assert!(e.position <= text.chars().count());
            }
        }
    }
}

//! Text shown back to people, kept short: values quoted in error messages,
//! and text cut to fit a status message or a terminal's table. The domain,
//! the search index, the API and the client all use it, so it depends on
//! none of them.

/// Longest value [`shown`] quotes whole, in characters.
const MAX_SHOWN_CHARS: usize = 64;

/// A value shown back in an error: quoted, and cut to a readable length so
/// that a refusal never carries a request's whole payload back.
pub fn shown(value: &str) -> String {
    let count = value.chars().count();
    if count <= MAX_SHOWN_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_SHOWN_CHARS).collect();
        format!("{head:?}… ({} more characters)", count - MAX_SHOWN_CHARS)
    }
}

/// Cuts text to at most `max` characters, the last of them `…` where it was
/// cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_text_and_marks_the_cut() {
        assert_eq!(cut("headline", 8), "headline");
        assert_eq!(cut("headlines", 8), "headlin…");
        assert_eq!(cut("ééééé", 3).chars().count(), 3);
        assert_eq!(cut("abc", 0), "…");
    }

    #[test]
    fn shown_quotes_and_counts_what_it_leaves_out() {
        assert_eq!(shown("a\"b"), r#""a\"b""#);
        let long = "x".repeat(70);
        assert_eq!(
            shown(&long),
            format!("{:?}… (6 more characters)", "x".repeat(64))
        );
    }
}

//! Text clean-up and Reckon length limits.
//!
//! Reckon One is an ASP.NET service, so its `maxLength` rules count UTF-16 code units, not
//! bytes or Rust `char`s: a character outside the Basic Multilingual Plane (emoji, rare CJK)
//! counts twice. Every limit here is applied in UTF-16 units, which is never more lenient
//! than Reckon.

/// Reckon customer and item `name`: 1–100.
pub const NAME_MAX: usize = 100;
/// Reckon address `line1..3`, `suburb`, `state`: ≤ 80 each.
pub const ADDRESS_LINE_MAX: usize = 80;
/// Reckon address `postcode` and `country`: ≤ 30.
pub const ADDRESS_SHORT_MAX: usize = 30;
/// Reckon address lines per address (`line1`, `line2`, `line3`).
pub const ADDRESS_LINES: usize = 3;
/// Reckon phone `number`: ≤ 30.
pub const PHONE_MAX: usize = 30;
/// Reckon electronic address (email) `address`: ≤ 100.
pub const EMAIL_MAX: usize = 100;
/// Reckon item `itemCode`: ≤ 100.
pub const ITEM_CODE_MAX: usize = 100;
/// Reckon descriptions (item sale description; used for invoice lines too): ≤ 1000.
pub const DESCRIPTION_MAX: usize = 1000;

/// Length as Reckon counts it (UTF-16 code units).
pub fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Trims, drops control characters and collapses every run of Unicode whitespace into one
/// space. Letters of every script, apostrophes, hyphens and accents are kept as they are.
pub fn clean(s: &str) -> String {
    let no_controls: String = s
        .chars()
        .map(|c| {
            if c.is_control() && !c.is_whitespace() {
                ' '
            } else {
                c
            }
        })
        .collect();
    no_controls.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`clean`], `None` when nothing is left.
pub fn clean_opt(s: Option<&str>) -> Option<String> {
    s.map(clean).filter(|s| !s.is_empty())
}

/// Cuts `s` to at most `max` UTF-16 units on a character boundary, never leaving a dangling
/// combining mark or trailing space.
pub fn truncate(s: &str, max: usize) -> String {
    if units(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let w = c.len_utf16();
        if n + w > max {
            break;
        }
        out.push(c);
        n += w;
    }
    // A base letter cut away from its combining accent would change the name; drop both.
    let cut_inside_cluster = s[out.len()..].chars().next().is_some_and(is_combining);
    if cut_inside_cluster {
        while out.chars().last().is_some_and(is_combining) {
            out.pop();
        }
        out.pop();
    }
    out.trim_end().to_string()
}

/// Combining marks that attach to the previous character (the common blocks).
fn is_combining(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F
        | 0x200D | 0xFE00..=0xFE0F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_collapses_whitespace_and_keeps_letters() {
        assert_eq!(clean("  O'Brien \t\n-Smith  "), "O'Brien -Smith");
        assert_eq!(clean("Zoë\u{00A0}\u{3000}José"), "Zoë José");
        assert_eq!(clean("a\u{0007}b"), "a b");
        assert_eq!(clean("   "), "");
        assert_eq!(clean_opt(Some(" \t ")), None);
    }

    #[test]
    fn truncate_counts_utf16_units() {
        assert_eq!(truncate("abcdef", 4), "abcd");
        assert_eq!(truncate("ab cdef", 3), "ab");
        // 😀 is two UTF-16 units.
        assert_eq!(truncate("a😀b", 2), "a");
        assert_eq!(truncate("a😀b", 3), "a😀");
        assert_eq!(units(&truncate(&"王".repeat(150), 100)), 100);
        // e + combining acute cut apart: both go.
        assert_eq!(truncate("abe\u{0301}", 3), "ab");
        assert_eq!(truncate("short", 100), "short");
    }
}

//! The one printable form of file names (and paths) in snap's output and
//! patterns: a name is any bytes but `/` and NUL, which neither a terminal
//! line nor a JSON string holds as they are. `docs/names.md` is the
//! user's description; the rules:
//!
//! * printable UTF-8 stays as it is;
//! * `\` is written `\\`, a newline `\n`, a tab `\t`;
//! * every other byte that is not part of valid UTF-8, or that belongs to
//!   a control character (C0, DEL, C1) or to a character that reorders or
//!   breaks lines (bidirectional controls, U+2028, U+2029, U+FEFF), is
//!   written `\xHH` (two lower-case hex digits, one escape per byte).
//!
//! [`unescape`] reverses it exactly (and also accepts upper-case hex and
//! `\xHH` for any byte), so `unescape(escape(b)) == b` for all bytes `b`.

use std::fmt::Write as _;

/// The escaped form of `bytes` (see the module docs).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if needs_hex(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        hex(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            hex(&mut out, b);
        }
    }
    out
}

/// The bytes that `escaped` stands for; an error names a `\` that does
/// not start one of the escapes `\\`, `\n`, `\t`, `\xHH`.
pub fn unescape(escaped: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut chars = escaped.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next().map(|(_, c)| c) {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('x') => {
                let digits = escaped.get(at + 2..at + 4).unwrap_or("");
                match u8::from_str_radix(digits, 16) {
                    Ok(b) if digits.bytes().all(|d| d.is_ascii_hexdigit()) => {
                        out.push(b);
                        chars.next();
                        chars.next();
                    }
                    _ => {
                        return Err(format!(
                            "`\\x` at byte {at} must be followed by two hex digits"
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "`\\{}` at byte {at} is not an escape: write a backslash as `\\\\` \
                     (the others are `\\n`, `\\t` and `\\xHH`)",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

/// Characters written as `\xHH` bytes although they are valid UTF-8: they
/// would end a line, or reorder or hide what a terminal shows.
fn needs_hex(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

fn hex(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(escape(b"plain name.txt"), "plain name.txt");
        assert_eq!(escape("ünïcödé".as_bytes()), "ünïcödé");
        assert_eq!(escape(b"a\xffb"), "a\\xffb");
        assert_eq!(escape(b"two\nlines\tand\\"), "two\\nlines\\tand\\\\");
        assert_eq!(escape(b"\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
        assert_eq!(escape("rtl\u{202e}txt".as_bytes()), "rtl\\xe2\\x80\\xaetxt");
        // A truncated UTF-8 sequence: each of its bytes.
        assert_eq!(escape(b"\xc3"), "\\xc3");
        assert_eq!(unescape("a\\xFFb").unwrap(), b"a\xffb");
        assert_eq!(unescape("\\x41").unwrap(), b"A");
    }

    #[test]
    fn bad_escapes_are_refused() {
        for bad in ["\\", "a\\q", "\\x", "\\x4", "\\xg0", "\\x+1", "x\\*"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn escape_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape(&bytes);
            prop_assert_eq!(unescape(&e).unwrap(), bytes);
            // One line, nothing a terminal acts on.
            prop_assert!(!e.chars().any(needs_hex), "{:?}", e);
        }

        #[test]
        fn printable_text_is_kept(s in "[^\\\\\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]{0,32}") {
            prop_assert_eq!(escape(s.as_bytes()), s.clone());
            prop_assert_eq!(unescape(&s).unwrap(), s.into_bytes());
        }

        #[test]
        fn escaped_text_round_trips(s in "\\PC{0,32}") {
            let e = escape(s.as_bytes());
            prop_assert_eq!(unescape(&e).unwrap(), s.as_bytes());
        }
    }
}

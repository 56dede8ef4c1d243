//! Input rules shared by every transport, so the dashboard can check a form before sending it
//! and the server enforces the same limits. Each failure names the field.

/// A field that failed validation, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub const USERNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;
pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const NOTES_MAX: usize = 200_000;

// The rules below as JSON Schema patterns (ECMA-262; they read the same in Rust's `regex` and
// Python's `re`), for the OpenAPI document. The classes spell out exactly what the checks use:
// `str::trim` removes Unicode White_Space, `char::is_control` is the Cc category.

/// Unicode White_Space (what `str::trim` removes), as the inside of a regex class.
macro_rules! ws {
    () => {
        "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}
/// Control characters (`char::is_control`), as the inside of a regex class.
macro_rules! ctl {
    () => {
        "\\x00-\\x1f\\x7f-\\x9f"
    };
}
/// Control characters and White_Space together, as the inside of a regex class.
macro_rules! ctl_ws {
    () => {
        "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}

/// Unicode White_Space (what `str::trim` removes), as the inside of a regex class.
pub const WS_CLASS: &str = ws!();

/// What [`name`] accepts: 1 to [`NAME_MAX`] characters once surrounding whitespace is trimmed,
/// none of them a control character.
pub const NAME_PATTERN: &str = concat!(
    "^[",
    ws!(),
    "]*[^",
    ctl_ws!(),
    "](?:[^",
    ctl!(),
    "]{0,198}[^",
    ctl_ws!(),
    "])?[",
    ws!(),
    "]*$"
);

/// Something that is not only whitespace (`!value.trim().is_empty()`); unanchored.
pub const NOT_BLANK_PATTERN: &str = concat!("[^", ws!(), "]");

/// Not only whitespace, and no control characters anywhere.
pub const PRINTABLE_PATTERN: &str = concat!("^[^", ctl!(), "]*[^", ctl_ws!(), "][^", ctl!(), "]*$");

/// [`username`]'s rule: 1 to [`USERNAME_MAX`] letters, digits, `.`, `_`, `-` once surrounding
/// whitespace is trimmed.
pub const USERNAME_PATTERN: &str = concat!("^[", ws!(), "]*[A-Za-z0-9._-]{1,64}[", ws!(), "]*$");

/// 1 to 2,000 characters once surrounding whitespace is trimmed, any characters (a request for
/// a person's `reason`).
pub const REASON_PATTERN: &str = concat!(
    "^[",
    ws!(),
    "]*[^",
    ws!(),
    "](?:[\\s\\S]{0,1998}[^",
    ws!(),
    "])?[",
    ws!(),
    "]*$"
);

/// Usernames: 1–64 of letters, digits, `.`, `_`, `-`. Compared case-insensitively.
pub fn username(value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new("username", "must not be empty"));
    }
    if v.chars().count() > USERNAME_MAX {
        return Err(FieldError::new(
            "username",
            format!("must be at most {USERNAME_MAX} characters"),
        ));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(FieldError::new(
            "username",
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(v.to_ascii_lowercase())
}

pub fn password(value: &str) -> Result<(), FieldError> {
    let n = value.chars().count();
    if n < PASSWORD_MIN {
        return Err(FieldError::new(
            "password",
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if n > PASSWORD_MAX {
        return Err(FieldError::new(
            "password",
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

/// A display name: trimmed, not empty, at most `NAME_MAX` characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if v.chars().count() > NAME_MAX {
        return Err(FieldError::new(
            field,
            format!("must be at most {NAME_MAX} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// Free text limited to `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// The largest `offset` a listing takes (far beyond any real list; keeps arithmetic on it safe).
pub const OFFSET_MAX: i64 = 1_000_000_000;

/// A page of a listing: `limit` from 1 to `max`, `offset` from 0 to [`OFFSET_MAX`].
pub fn page(limit: i64, offset: i64, max: i64) -> Result<(), FieldError> {
    if !(1..=max).contains(&limit) {
        return Err(FieldError::new(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    if offset < 0 {
        return Err(FieldError::new("offset", "must not be negative"));
    }
    if offset > OFFSET_MAX {
        return Err(FieldError::new(
            "offset",
            format!("must be at most {OFFSET_MAX}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(username("  Admin ").unwrap(), "admin");
        assert_eq!(username("").unwrap_err().field, "username");
        assert!(username("a b").is_err());
        assert!(username(&"x".repeat(65)).is_err());
    }

    #[test]
    fn names_reject_blank_long_and_control_characters() {
        assert_eq!(name("name", " Demo ").unwrap(), "Demo");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"n".repeat(201)).is_err());
        assert_eq!(name("name", "a\u{0}b").unwrap_err().field, "name");
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"p".repeat(257)).is_err());
    }
}

/// The patterns say exactly what the checks do: every string of a small alphabet (whitespace,
/// control and other characters) up to 3 long, and long ones around the limits, is matched by
/// a pattern exactly when its check accepts it, read as JSON Schema reads it.
#[cfg(all(test, feature = "server"))]
mod pattern_tests {
    use super::*;

    fn strings() -> Vec<String> {
        let alphabet = [
            ' ', '\t', '\n', '\u{b}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}', '\u{feff}',
            '\u{200b}', '\u{0}', '\u{1c}', '\u{7f}', '\u{9f}', 'a', 'Z', '.', '_', '-', 'é', '😀',
        ];
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        for n in [63, 64, 65, 198, 199, 200, 201, 1999, 2000, 2001] {
            for fill in ["a", "é", "😀", " "] {
                let body = fill.repeat(n);
                out.push(body.clone());
                out.push(format!(" {body}\t"));
                out.push(format!("x{body}x"));
            }
        }
        out
    }

    fn agrees(pattern: &str, check: impl Fn(&str) -> bool) {
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let re = regex::Regex::new(pattern).unwrap();
        for s in strings() {
            let ok = check(&s);
            assert_eq!(
                validator.is_valid(&serde_json::json!(s)),
                ok,
                "{pattern} on {s:?}"
            );
            assert_eq!(re.is_match(&s), ok, "regex {pattern} on {s:?}");
        }
    }

    #[test]
    fn name_pattern() {
        agrees(NAME_PATTERN, |s| name("name", s).is_ok());
    }

    #[test]
    fn not_blank_pattern() {
        agrees(NOT_BLANK_PATTERN, |s| !s.trim().is_empty());
    }

    #[test]
    fn printable_pattern() {
        agrees(PRINTABLE_PATTERN, |s| {
            !s.trim().is_empty() && !s.chars().any(char::is_control)
        });
    }

    #[test]
    fn username_pattern() {
        agrees(USERNAME_PATTERN, |s| username(s).is_ok());
    }

    #[test]
    fn reason_pattern() {
        agrees(REASON_PATTERN, |s| {
            let t = s.trim();
            !t.is_empty() && t.chars().count() <= 2000
        });
    }
}

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

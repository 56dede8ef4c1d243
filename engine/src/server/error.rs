//! The engine's one error type. Transports map it to their status codes in one place; the
//! `Display` text is safe to show a user (internal details stay in `Internal`/`Database` and
//! are logged, never sent).

use crate::validate::FieldError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Input that breaks a rule; names the field.
    #[error("{0}")]
    Invalid(FieldError),
    /// Imported text with bad lines: the first ones (up to 100) and how many in all.
    #[error("{}", describe_lines(errors, *count))]
    BadLines {
        field: String,
        errors: Vec<crate::types::LineError>,
        count: usize,
    },
    /// Input that clashes with existing data (a taken name, setup already done); names the field.
    #[error("{0}")]
    Conflict(FieldError),
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    Locked { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(FieldError::new(field, message))
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict(FieldError::new(field, message))
    }

    /// The field this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid(f) | Error::Conflict(f) => Some(&f.field),
            Error::BadLines { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// "line 3: expected 2 fields, found 1 (and 4 more bad lines)".
fn describe_lines(errors: &[crate::types::LineError], count: usize) -> String {
    let Some(first) = errors.first() else {
        return "bad lines".to_owned();
    };
    let tail = match count.saturating_sub(1) {
        0 => String::new(),
        1 => " (and 1 more bad line)".to_owned(),
        n => format!(" (and {n} more bad lines)"),
    };
    format!("line {}: {}{tail}", first.line, first.message)
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::Invalid(e)
    }
}

/// Turns a unique-constraint violation into a conflict on `field`; other errors pass through.
pub(crate) fn unique_violation(
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::conflict(field, message),
        _ => Error::Database(e),
    }
}

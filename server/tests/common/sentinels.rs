//! Sentinel secrets: values the tests plant as passwords, endpoint keys, webhook headers and
//! API keys, which must never come back. Every response body a `TestServer` reads and every log
//! line of the test binary (captured here, once per binary) is searched for them; a server's
//! `stop` fails the test if any log line held one.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use super::{ADMIN_PASSWORD, STATIC_KEY, USER_PASSWORD};

/// An endpoint API key to plant.
pub const ENDPOINT_KEY: &str = "sk-endpoint-sentinel-0123456789abcdefXYZ";
/// A webhook (or webhook scorer) header value to plant.
pub const HEADER_SECRET: &str = "hdr-sentinel-9876543210-zyxwvutsrq";

pub const ALL: [&str; 5] = [
    ADMIN_PASSWORD,
    USER_PASSWORD,
    STATIC_KEY,
    ENDPOINT_KEY,
    HEADER_SECRET,
];

/// The sentinels `text` holds.
pub fn found(text: &str) -> Vec<&'static str> {
    ALL.iter().copied().filter(|s| text.contains(s)).collect()
}

/// Panics if `text` (from `what`) holds a sentinel.
pub fn assert_absent(text: &str, what: &str) {
    let found = found(text);
    assert!(found.is_empty(), "secret {found:?} in {what}: {text}");
}

static LEAKS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Log lines that held a sentinel, so far (and forgets them).
pub fn leaked_log_lines() -> Vec<String> {
    std::mem::take(&mut *LEAKS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Captures the binary's logs (debug for our crates) into the sentinel scan; idempotent.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,engine=debug,server=debug,app=debug,sqlx=warn")
            .with_ansi(false)
            .with_writer(|| Scan)
            .try_init();
    });
}

struct Scan;

impl Write for Scan {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if !found(&text).is_empty() {
            LEAKS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(text.into_owned());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

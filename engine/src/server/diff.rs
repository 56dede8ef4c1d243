//! Word-level diffs of two texts (outputs, prompts), for comparing runs: insertions and
//! deletions as spans, not two blocks of text. Computed on the server (the browser only draws
//! the spans).

use std::time::Duration;

use similar::{Algorithm, ChangeTag, TextDiffConfig};

use crate::types::{DiffOp, DiffSpan, TextDiff};

/// Texts longer than this are diffed line by line (a word diff of huge texts is slow and
/// unreadable).
pub const WORD_DIFF_MAX: usize = 200_000;

/// The word-level diff of `a` (before) and `b` (after). Whitespace belongs to the spans, so
/// joining every span's text in order gives back both texts (`Same` + `Removed` = `a`,
/// `Same` + `Added` = `b`). A diff that takes over a second falls back to a coarser one.
pub fn words(a: &str, b: &str) -> TextDiff {
    build(
        a,
        b,
        a.len() + b.len() > WORD_DIFF_MAX,
        Duration::from_secs(1),
    )
}

fn build(a: &str, b: &str, by_lines: bool, timeout: Duration) -> TextDiff {
    let mut config = TextDiffConfig::default();
    config.algorithm(Algorithm::Patience).timeout(timeout);
    let diff = if by_lines {
        config.diff_lines(a, b)
    } else {
        config.diff_words(a, b)
    };
    let mut out = TextDiff {
        spans: Vec::new(),
        added_words: 0,
        removed_words: 0,
        similarity: f64::from(diff.ratio()),
    };
    for change in diff.iter_all_changes() {
        let op = match change.tag() {
            ChangeTag::Equal => DiffOp::Same,
            ChangeTag::Insert => DiffOp::Added,
            ChangeTag::Delete => DiffOp::Removed,
        };
        let text = change.value();
        let words = text.split_whitespace().count();
        match op {
            DiffOp::Added => out.added_words += words,
            DiffOp::Removed => out.removed_words += words,
            DiffOp::Same => {}
        }
        match out.spans.last_mut() {
            Some(last) if last.op == op => last.text.push_str(text),
            _ => out.spans.push(DiffSpan {
                op,
                text: text.to_owned(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(d: &TextDiff, keep: DiffOp) -> String {
        d.spans
            .iter()
            .filter(|s| s.op == DiffOp::Same || s.op == keep)
            .map(|s| s.text.as_str())
            .collect()
    }

    #[test]
    fn a_changed_word_is_one_removal_and_one_addition() {
        let d = words("the cat sat on the mat", "the dog sat on the mat");
        let ops: Vec<(DiffOp, &str)> = d.spans.iter().map(|s| (s.op, s.text.as_str())).collect();
        assert_eq!(
            ops,
            vec![
                (DiffOp::Same, "the "),
                (DiffOp::Removed, "cat"),
                (DiffOp::Added, "dog"),
                (DiffOp::Same, " sat on the mat"),
            ]
        );
        assert_eq!((d.added_words, d.removed_words), (1, 1));
        assert!(d.similarity > 0.7 && d.similarity < 1.0, "{}", d.similarity);
    }

    #[test]
    fn both_texts_read_back_from_the_spans() {
        let (a, b) = (
            "Ada Lovelace, London, 1843\nwith notes",
            "Ada Lovelace, Analytical Engine, London\nwith many notes  ",
        );
        let d = words(a, b);
        assert_eq!(side(&d, DiffOp::Removed), a);
        assert_eq!(side(&d, DiffOp::Added), b);
        let same = words("x y", "x y");
        assert_eq!(same.spans.len(), 1);
        assert_eq!(same.similarity, 1.0);
        let empty = words("", "new text");
        assert_eq!((empty.added_words, empty.removed_words), (2, 0));
    }

    #[test]
    fn huge_texts_are_diffed_by_line() {
        let a = "line\n".repeat(50_000);
        let b = format!("{a}extra\n");
        let d = words(&a, &b);
        assert_eq!(d.added_words, 1);
        assert_eq!(side(&d, DiffOp::Added), b);
    }
}

/// Several word diffs off the async runtime (a blocking thread), within about `budget` in all:
/// once it is spent, the rest are diffed line by line (fast), so one request cannot hold a
/// thread for long.
pub async fn words_all(pairs: Vec<(String, String)>, budget: Duration) -> Vec<TextDiff> {
    let n = pairs.len();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        pairs
            .iter()
            .map(|(a, b)| {
                if started.elapsed() < budget {
                    words(a, b)
                } else {
                    build(a, b, true, Duration::from_millis(50))
                }
            })
            .collect()
    })
    .await
    .unwrap_or_else(|_| {
        (0..n)
            .map(|_| TextDiff {
                spans: Vec::new(),
                added_words: 0,
                removed_words: 0,
                similarity: 0.0,
            })
            .collect()
    })
}

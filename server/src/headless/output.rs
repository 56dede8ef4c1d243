//! What `promptlooper run` prints: a progress bar on a terminal (plain lines otherwise) and the
//! leaderboard as a table.

use std::io::Write;
use std::time::{Duration, Instant};

use engine::types::{Leaderboard, Progress};

/// Progress on standard error: a bar redrawn in place on a terminal; otherwise a line at each
/// tenth of the way and at most every 5 seconds in between.
pub struct ProgressView {
    tty: bool,
    started: Instant,
    last_line: Instant,
    last_tenth: i64,
    drawn: bool,
}

impl Default for ProgressView {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressView {
    pub fn new() -> ProgressView {
        ProgressView {
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            started: Instant::now(),
            last_line: Instant::now(),
            last_tenth: -1,
            drawn: false,
        }
    }

    pub fn update(&mut self, p: &Progress, best: Option<f64>) {
        let total = p.total.max(1);
        let mut text = format!("{}/{} runs", p.done, p.total);
        if p.failed > 0 {
            text.push_str(&format!(", {} failed", p.failed));
        }
        if p.cached > 0 {
            text.push_str(&format!(", {} cached", p.cached));
        }
        if let Some(b) = best {
            text.push_str(&format!(", best {b:.3}"));
        }
        if self.tty {
            let width = 24usize;
            let filled = ((p.done as f64 / total as f64) * width as f64).round() as usize;
            let filled = filled.min(width);
            let bar = format!("{}{}", "█".repeat(filled), "░".repeat(width - filled));
            let eta = p
                .eta_seconds
                .filter(|_| p.done < p.total)
                .map(|s| format!(", {} left", seconds(s)))
                .unwrap_or_default();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{bar} {text}{eta}");
            let _ = err.flush();
            self.drawn = true;
            return;
        }
        let tenth = p.done * 10 / total;
        if tenth != self.last_tenth || self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_tenth = tenth;
            self.last_line = Instant::now();
            eprintln!(
                "progress: {text} ({}%, {})",
                p.done * 100 / total,
                seconds(self.started.elapsed().as_secs_f64())
            );
        }
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// The leaderboard as an aligned text table.
pub fn table(board: &Leaderboard) -> String {
    let scorers: Vec<&str> = board.scorers.iter().map(|s| s.name.as_str()).collect();
    let mut head = vec!["#".to_owned(), "score".into(), "95% CI".into()];
    head.extend(scorers.iter().map(|s| (*s).to_owned()));
    head.extend(
        [
            "runs",
            "failed",
            "tokens",
            "cost $",
            "ms/run",
            "configuration",
        ]
        .map(String::from),
    );
    let mut rows = vec![head];
    for e in &board.entries {
        let mut row = vec![
            e.rank.to_string(),
            num(e.score),
            match (e.ci_low, e.ci_high) {
                (Some(a), Some(b)) => format!("{a:.3}–{b:.3}"),
                _ => "–".into(),
            },
        ];
        for s in &scorers {
            row.push(num(e.scorers.get(*s).and_then(|x| x.mean)));
        }
        row.push(e.runs.to_string());
        row.push(e.failed.to_string());
        row.push((e.tokens_in + e.tokens_out).to_string());
        row.push(e.cost.map_or("–".into(), |c| format!("{c:.4}")));
        row.push(e.latency_ms.map_or("–".into(), |l| format!("{l:.0}")));
        row.push(match &e.mark {
            Some(m) => format!("{} ({m})", e.label),
            None => e.label.clone(),
        });
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == columns - 1 {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                // Numbers right-aligned, the rest left.
                if c == 0 || i == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn num(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

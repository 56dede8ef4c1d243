//! Reading sample items from text: CSV (a header row names the variables), JSON lines and JSON
//! arrays. Every bad line is reported with its line number (the first [`ERRORS_SHOWN`], with the
//! total), so a person can fix them all at once; imports refuse text with any bad line.

use std::collections::BTreeSet;
use std::io::BufRead;

use serde_json::{Map, Value};

use super::error::{Error, Result};
use crate::types::{LineError, ParsedSamples, SampleFormat, SampleItem};

/// Bad lines reported in full; the rest are counted.
pub const ERRORS_SHOWN: usize = 100;

/// Reads `content` as sample items (`format`: detected when absent), keeping the good lines
/// and reporting the bad ones.
pub fn parse_samples(format: Option<SampleFormat>, content: &str) -> ParsedSamples {
    let format = format.unwrap_or_else(|| SampleFormat::detect(content));
    let mut out = Collected::default();
    // Reading from memory cannot fail.
    let _ = read_items(format, content.as_bytes(), &mut |line, read| match read {
        Ok(item) => out.items.push(item),
        Err(message) => out.error(line, message),
    });
    out.finish(format)
}

/// What [`read_items`] hands over for each item: the line it starts on, and the item or why
/// that line is not one.
pub type Read = std::result::Result<SampleItem, String>;

/// Reads items one at a time from `reader` (a file of any size: memory stays bounded by the
/// largest item) and hands each to `sink`. Only I/O errors stop it.
pub fn read_items(
    format: SampleFormat,
    reader: impl BufRead,
    sink: &mut dyn FnMut(usize, Read),
) -> std::io::Result<()> {
    match format {
        SampleFormat::Csv => read_csv(reader, sink),
        SampleFormat::Jsonl => read_jsonl(reader, sink),
        SampleFormat::Json => read_json(reader, sink),
    }
}

/// Reads `content` as sample items, refusing it (naming the first bad line, and how many more
/// there are) when any line is bad.
pub fn parse_strict(format: SampleFormat, content: &str) -> Result<Vec<SampleItem>> {
    let parsed = parse_samples(Some(format), content);
    if parsed.errors.is_empty() {
        return Ok(parsed.items);
    }
    Err(Error::BadLines {
        field: "content".to_owned(),
        errors: parsed.errors,
        count: parsed.error_count,
    })
}

pub fn parse_csv(content: &str) -> Result<Vec<SampleItem>> {
    parse_strict(SampleFormat::Csv, content)
}

pub fn parse_jsonl(content: &str) -> Result<Vec<SampleItem>> {
    parse_strict(SampleFormat::Jsonl, content)
}

/// A valid template variable name: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Default)]
struct Collected {
    items: Vec<SampleItem>,
    errors: Vec<LineError>,
    error_count: usize,
}

impl Collected {
    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < ERRORS_SHOWN {
            self.errors.push(LineError {
                line,
                message: message.into(),
            });
        }
    }

    fn finish(self, format: SampleFormat) -> ParsedSamples {
        let mut fields: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for item in &self.items {
            for k in item.input.keys() {
                if seen.insert(k.as_str()) {
                    fields.push(k.clone());
                }
            }
        }
        let common = super::experiments::common_inputs(&self.items).unwrap_or_default();
        ParsedSamples {
            format,
            common_fields: fields
                .iter()
                .filter(|f| common.contains(*f))
                .cloned()
                .collect(),
            fields,
            items: self.items,
            errors: self.errors,
            error_count: self.error_count,
        }
    }
}

/// CSV with a header row; `reference`, `id`, `split` and `tags` (separated by `;`) columns are
/// not inputs.
fn read_csv(reader: impl BufRead, sink: &mut dyn FnMut(usize, Read)) -> std::io::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::Headers)
        .from_reader(reader);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            if let csv::ErrorKind::Io(_) = e.kind() {
                return Err(std::io::Error::other(e.to_string()));
            }
            sink(1, Err(e.to_string()));
            return Ok(());
        }
    };
    if headers.is_empty() || headers.iter().any(str::is_empty) {
        sink(1, Err("every column needs a name".to_owned()));
        return Ok(());
    }
    if let Some(bad) = headers
        .iter()
        .find(|h| !matches!(*h, "reference" | "id" | "split" | "tags") && !is_identifier(h))
    {
        sink(
            1,
            Err(format!(
                "column {bad:?} is not a valid variable name (letters, digits, _; not starting with a digit)"
            )),
        );
        return Ok(());
    }
    let mut record = csv::StringRecord::new();
    loop {
        // The line where the next record starts (for records that fail before a position is known).
        let line = reader.position().line() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let mut item = SampleItem::default();
                for (name, value) in headers.iter().zip(record.iter()) {
                    match name {
                        "reference" => item.reference = Some(value.to_owned()),
                        "id" => item.id = (!value.is_empty()).then(|| value.to_owned()),
                        "split" => item.split = (!value.is_empty()).then(|| value.to_owned()),
                        "tags" => {
                            item.tags = value
                                .split(';')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned)
                                .collect()
                        }
                        _ => {
                            item.input
                                .insert(name.to_owned(), Value::String(value.to_owned()));
                        }
                    }
                }
                sink(line.max(1), Ok(item));
            }
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(std::io::Error::other(e.to_string()));
                }
                let line = e.position().map_or(line, |p| p.line() as usize);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("expected {expected_len} fields, found {len}"),
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                    _ => e.to_string(),
                };
                sink(line, Err(message));
            }
        }
    }
    Ok(())
}

/// One JSON object per line: `{"input": {...}, "reference": "...", "id": "..."}`, or a flat
/// object whose `reference`/`id`/`split`/`tags` keys are taken out and the rest are inputs.
/// Blank lines skip.
fn read_jsonl(mut reader: impl BufRead, sink: &mut dyn FnMut(usize, Read)) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            sink(line, Err("not valid UTF-8".to_owned()));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let read = serde_json::from_str::<Value>(text)
            .map_err(|e| format!("invalid JSON ({e})"))
            .and_then(item_from_value);
        sink(line, read);
    }
}

/// Longest JSON array element kept whole (bigger ones are reported, not buffered).
const MAX_ELEMENT: usize = 4 * 1024 * 1024;

/// A JSON array of objects shaped as JSON lines are, read element by element; each bad
/// element is reported at the line where it starts.
fn read_json(reader: impl BufRead, sink: &mut dyn FnMut(usize, Read)) -> std::io::Result<()> {
    let mut split = ArraySplitter::default();
    let mut bytes = reader.bytes();
    // Before the array: only whitespace, then `[`.
    loop {
        match bytes.next().transpose()? {
            None => {
                sink(
                    split.line,
                    Err("expected a JSON array of objects".to_owned()),
                );
                return Ok(());
            }
            Some(b'\n') => split.line += 1,
            Some(b) if b.is_ascii_whitespace() => {}
            Some(b'[') => break,
            Some(b'\xEF' | b'\xBB' | b'\xBF') if split.line == 1 => {}
            Some(_) => {
                sink(
                    split.line,
                    Err("expected a JSON array of objects".to_owned()),
                );
                return Ok(());
            }
        }
    }
    for b in bytes {
        if split.closed {
            return Ok(());
        }
        match split.push(b?) {
            Step::More => {}
            Step::Element(start, element) => {
                let read = match element {
                    Some(raw) => serde_json::from_slice::<Value>(&raw)
                        .map_err(|e| format!("invalid JSON ({e})"))
                        .and_then(item_from_value),
                    None => Err(format!(
                        "an item of more than {} MiB",
                        MAX_ELEMENT / 1024 / 1024
                    )),
                };
                sink(start, read);
            }
            Step::End => return Ok(()),
            Step::Bad(line, message) => {
                sink(line, Err(message));
                return Ok(());
            }
        }
    }
    if !split.closed {
        sink(split.line, Err("the JSON array is not closed".to_owned()));
    }
    Ok(())
}

/// Splits the inside of a JSON array into its top-level elements, byte by byte.
struct ArraySplitter {
    line: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The element being read: where it started, its bytes (`None` once too long).
    current: Option<(usize, Option<Vec<u8>>)>,
    /// A `,` was seen after the last element (another must follow).
    want_element: bool,
    /// The array's `]` ended its last (scalar) element.
    closed: bool,
}

impl Default for ArraySplitter {
    fn default() -> Self {
        ArraySplitter {
            line: 1,
            depth: 0,
            in_string: false,
            escaped: false,
            current: None,
            want_element: false,
            closed: false,
        }
    }
}

enum Step {
    More,
    Element(usize, Option<Vec<u8>>),
    End,
    Bad(usize, String),
}

impl ArraySplitter {
    fn push(&mut self, b: u8) -> Step {
        if b == b'\n' {
            self.line += 1;
        }
        if let Some((_, buf)) = &mut self.current {
            if let Some(bytes) = buf {
                if bytes.len() < MAX_ELEMENT {
                    bytes.push(b);
                } else {
                    *buf = None;
                }
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                return Step::More;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return self.finish();
                    }
                }
                b',' | b']' | b'}' if self.depth == 0 => {
                    // A scalar element ends here.
                    let (start, buf) = self.current.take().expect("reading an element");
                    let buf = buf.map(|mut v| {
                        v.pop();
                        v
                    });
                    self.want_element = b == b',';
                    self.closed = b == b']';
                    return Step::Element(start, buf);
                }
                _ => {}
            }
            return Step::More;
        }
        match b {
            b if b.is_ascii_whitespace() => Step::More,
            b',' if !self.want_element => {
                self.want_element = true;
                Step::More
            }
            b']' if !self.want_element => Step::End,
            b',' | b']' => Step::Bad(self.line, "expected an item after `,`".to_owned()),
            _ => {
                self.want_element = false;
                self.current = Some((self.line, Some(vec![b])));
                match b {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_string = true,
                    _ => {}
                }
                Step::More
            }
        }
    }

    fn finish(&mut self) -> Step {
        let (start, buf) = self.current.take().expect("reading an element");
        Step::Element(start, buf)
    }
}

fn item_from_value(value: Value) -> std::result::Result<SampleItem, String> {
    let Value::Object(mut object) = value else {
        return Err("expected a JSON object".to_owned());
    };
    let text = |v: Value, what: &str| match v {
        Value::String(s) => Ok(s),
        Value::Null => Err(format!("{what} must be a string")),
        other => Ok(other.to_string()),
    };
    let reference = object
        .remove("reference")
        .map(|v| text(v, "reference"))
        .transpose()?;
    let id = object.remove("id").map(|v| text(v, "id")).transpose()?;
    let split = match object.remove("split") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("split must be a string".to_owned()),
    };
    let tags = match object.remove("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .into_iter()
            .map(|t| match t {
                Value::String(s) => Ok(s),
                _ => Err("tags must be a list of strings".to_owned()),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(_) => return Err("tags must be a list of strings".to_owned()),
    };
    let input: Map<String, Value> = match object.remove("input") {
        Some(Value::Object(input)) if object.is_empty() => input,
        Some(_) if object.is_empty() => return Err("input must be an object".to_owned()),
        Some(_) => {
            return Err(
                "with an input object, only id, reference, split and tags may follow".to_owned(),
            );
        }
        None => object,
    };
    if let Some(bad) = input.keys().find(|k| !is_identifier(k)) {
        return Err(format!(
            "{bad:?} is not a valid variable name (letters, digits, _; not starting with a digit)"
        ));
    }
    Ok(SampleItem {
        id,
        input: input.into_iter().collect(),
        reference,
        tags,
        split,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_imports_with_line_numbers() {
        let items =
            parse_csv("text,lang,reference\nHello,en,Hallo\n\"Multi\nline\",de,x\n").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].input["text"], "Hello");
        assert_eq!(items[0].reference.as_deref(), Some("Hallo"));
        assert_eq!(items[1].input["text"], "Multi\nline");
        let e = parse_csv("a,b\n1,2\n3\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn every_bad_csv_line_is_reported_and_the_good_ones_kept() {
        let p = parse_samples(
            None,
            "q,reference\nhi,yo\nbad\n\"two\nlines\",ok\n1,2,3\nfine,x\n",
        );
        assert_eq!(p.format, SampleFormat::Csv);
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.error_count, 2);
        assert_eq!(p.errors[0].line, 3);
        assert_eq!(p.errors[0].message, "expected 2 fields, found 1");
        assert_eq!(p.errors[1].line, 6, "counted after a quoted newline");
        assert_eq!(p.fields, vec!["q"]);
        let e = parse_strict(SampleFormat::Csv, "q\n\"a\nb\",c\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2: expected 1 fields, found 2"),
            "{e}"
        );
        let bad_header = parse_samples(Some(SampleFormat::Csv), "my col\nx\n");
        assert_eq!(bad_header.errors[0].line, 1);
        assert!(bad_header.errors[0].message.contains("\"my col\""));
    }

    #[test]
    fn jsonl_imports_both_shapes_and_names_bad_lines() {
        let items = parse_jsonl(
            "{\"input\": {\"q\": \"hi\"}, \"reference\": \"yo\"}\n\n{\"q\": \"two\", \"id\": 7}\n",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].input["q"], "two");
        assert_eq!(items[1].id.as_deref(), Some("7"));
        let e = parse_jsonl("{\"q\": 1}\n{oops}\n").unwrap_err();
        assert!(e.to_string().contains("line 2: invalid JSON"), "{e}");
        assert!(
            parse_jsonl("[1]")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        let e = parse_jsonl("{oops}\n{\"q\": 1}\n[2]\n").unwrap_err();
        assert!(e.to_string().ends_with("(and 1 more bad line)"), "{e}");
    }

    #[test]
    fn json_arrays_report_elements_at_their_lines() {
        let text = "[\n  {\"q\": \"a\", \"reference\": \"A\"},\n  {\"q\": null, \"reference\": null},\n  7,\n  {\"input\": {\"q\": \"b\"}}\n]";
        let p = parse_samples(None, text);
        assert_eq!(p.format, SampleFormat::Json);
        assert_eq!(p.items.len(), 2);
        assert_eq!(
            p.errors,
            vec![
                LineError {
                    line: 3,
                    message: "reference must be a string".into()
                },
                LineError {
                    line: 4,
                    message: "expected a JSON object".into()
                },
            ]
        );
        let broken = parse_samples(Some(SampleFormat::Json), "[\n{\"q\": 1},\n{\"q\" 2}\n]");
        assert_eq!(broken.errors[0].line, 3);
        assert_eq!(broken.items.len(), 1, "the good element is kept");
        let open = parse_samples(Some(SampleFormat::Json), "[{\"q\": \"a]\"}, {\"q\": 2}");
        assert_eq!(open.items.len(), 2);
        assert_eq!(open.errors[0].message, "the JSON array is not closed");
        let scalars = parse_samples(Some(SampleFormat::Json), "[1, \"x,y\"]");
        assert_eq!(scalars.error_count, 2, "{scalars:?}");
        assert_eq!(
            parse_samples(Some(SampleFormat::Json), "{\"q\": 1}").errors[0].message,
            "expected a JSON array of objects"
        );
    }

    #[test]
    fn errors_beyond_the_first_hundred_are_counted() {
        let text: String = (0..250).map(|_| "{oops}\n").collect();
        let p = parse_samples(Some(SampleFormat::Jsonl), &text);
        assert_eq!(p.errors.len(), ERRORS_SHOWN);
        assert_eq!(p.error_count, 250);
        assert_eq!(p.errors[99].line, 100);
    }

    #[test]
    fn common_fields_are_the_ones_every_item_has() {
        let p = parse_samples(None, "{\"a\": 1, \"b\": 2}\n{\"b\": 3, \"c\": 4}\n");
        assert_eq!(p.fields, vec!["a", "b", "c"]);
        assert_eq!(p.common_fields, vec!["b"]);
    }
}

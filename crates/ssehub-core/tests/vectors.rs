//! Data-driven conformance: every vector file under `shared/reference/sse-vectors/` (see its
//! README for origins, licences and schemas) is run through [`Parser`], each stream fed as its
//! given chunks, whole, one byte at a time and in several seeded random splits. All feedings
//! must give identical items, and those must match the expectations.
//!
//! Vectors with `content_type`/`transport` describe HTTP-level behaviour; only what a bare
//! parser sees is checked for them (events, and the last event ID / retry values where given).

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde_json::Value;
use ssehub_core::{ParsedEvent, Parser, ParserItem};

const VECTOR_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/sse-vectors"
);

/// Vectors whose expectation conflicts with the WHATWG spec, as (file, vector id, reason).
/// They are reported and skipped. None is known.
const SPEC_CONFLICTS: &[(&str, &str, &str)] = &[];

/// Seeds for the random splits; each gives one more way of feeding every vector.
const SPLIT_SEEDS: [u64; 4] = [0x5EED_0001, 0x5EED_0002, 0xC0FFEE, 0xDEAD_BEEF];

#[test]
fn all_vectors() {
    let dir = Path::new(VECTOR_DIR);
    assert!(
        dir.is_dir(),
        "SSE vector directory not found at {} (expected shared/reference/sse-vectors beside the \
         checkout; see its README)",
        dir.display()
    );
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files.sort();

    let mut report = Report::default();
    for path in &files {
        let name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let before = report.run;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => run_json_file(&name, path, &mut report),
            Some("sse") => run_sse_file(&name, path, &mut report),
            _ => continue, // README, licences
        }
        eprintln!("{name}: {} vectors", report.run - before);
    }

    for (file, id, reason) in &report.skipped {
        eprintln!("SKIPPED (conflicts with WHATWG) {file} / {id}: {reason}");
    }
    eprintln!(
        "SSE vectors run: {} ({} skipped)",
        report.run,
        report.skipped.len()
    );
    assert!(
        report.failures.is_empty(),
        "{} vector(s) failed:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
    assert!(
        report.run > 150,
        "only {} vectors were run: the vector files are incomplete",
        report.run
    );
}

#[derive(Default)]
struct Report {
    run: usize,
    skipped: Vec<(String, String, String)>,
    failures: Vec<String>,
}

impl Report {
    fn record(&mut self, file: &str, id: &str, result: Result<(), String>) {
        if let Some((_, _, reason)) = SPEC_CONFLICTS
            .iter()
            .find(|(f, i, _)| *f == file && *i == id)
        {
            self.skipped
                .push((file.into(), id.into(), (*reason).into()));
            return;
        }
        self.run += 1;
        if let Err(e) = result {
            self.failures.push(format!("{file} / {id}: {e}"));
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feeding

/// A way to cut the stream: the length of each chunk, in order (zero-length chunks allowed).
type Split = Vec<usize>;

fn splits(len: usize, given: &[usize]) -> Vec<(String, Split)> {
    let mut all = vec![
        ("given chunks".to_owned(), given.to_vec()),
        ("whole".to_owned(), vec![len]),
        ("byte by byte".to_owned(), vec![1; len]),
    ];
    for seed in SPLIT_SEEDS {
        all.push((format!("random split {seed:#x}"), random_split(len, seed)));
    }
    all
}

fn random_split(len: usize, seed: u64) -> Split {
    let mut rng = SplitMix(seed ^ (len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut lengths = Vec::new();
    let mut left = len;
    while left > 0 {
        let r = rng.next();
        let n = match r % 10 {
            0 => 0,
            1..=5 => 1 + (r >> 8) as usize % 4,
            6..=8 => 1 + (r >> 8) as usize % 64,
            _ => 1 + (r >> 8) as usize % 4096,
        };
        let n = n.min(left);
        lengths.push(n);
        left -= n;
    }
    lengths
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn pieces<'a>(stream: &'a [u8], split: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0;
    split.iter().map(move |&n| {
        let piece = &stream[at..at + n];
        at += n;
        piece
    })
}

#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<ParserItem>,
    final_last_event_id: String,
}

impl Outcome {
    fn events(&self) -> Vec<&ParsedEvent> {
        self.items
            .iter()
            .filter_map(|item| match item {
                ParserItem::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn retries(&self) -> Vec<u64> {
        self.items
            .iter()
            .filter_map(|item| match item {
                ParserItem::Retry(ms) => Some(*ms),
                _ => None,
            })
            .collect()
    }

    fn comments(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|item| match item {
                ParserItem::Comment(c) => Some(c.as_str()),
                _ => None,
            })
            .collect()
    }

    /// For each event, the latest retry value processed since the previous event.
    fn retry_attachments(&self) -> Vec<Option<u64>> {
        let mut pending = None;
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                ParserItem::Retry(ms) => pending = Some(*ms),
                ParserItem::Event(_) => out.push(pending.take()),
                ParserItem::Comment(_) => {}
            }
        }
        out
    }
}

fn parse(stream: &[u8], split: &[usize]) -> Outcome {
    let mut parser = Parser::new();
    let mut items = Vec::new();
    for piece in pieces(stream, split) {
        parser.feed(piece, &mut items);
    }
    parser.finish();
    Outcome {
        items,
        final_last_event_id: parser.last_event_id().to_owned(),
    }
}

/// Parses every way; all must agree. Returns the outcome.
fn parse_all_ways(stream: &[u8], given: &[usize]) -> Result<Outcome, String> {
    let mut ways = splits(stream.len(), given).into_iter();
    let (_, first_split) = ways.next().expect("at least one split");
    let first = parse(stream, &first_split);
    for (how, split) in ways {
        let other = parse(stream, &split);
        if other != first {
            return Err(format!(
                "feeding {how} differs from the given chunks:\n  given: {}\n  {how}: {}",
                short(&first),
                short(&other)
            ));
        }
    }
    Ok(first)
}

fn short<T: Debug>(value: &T) -> String {
    let s = format!("{value:?}");
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} chars)", &s[..end], s.len())
    } else {
        s
    }
}

fn check_eq<T: PartialEq + Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}:\n  got:  {}\n  want: {}",
            short(&got),
            short(&want)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON vector files

fn run_json_file(name: &str, path: &Path, report: &mut Report) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: invalid JSON: {e}"));
    let schema = doc["schema"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no schema field"));
    let vectors = doc["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no vectors array"));
    let run: fn(&Value) -> Result<(), String> = match schema {
        "sse-vectors/1" => run_sse_vector,
        "sse-conformance-vectors/1" => run_conformance_vector,
        "sse-line-vectors/1" => run_line_vector,
        other => panic!("{name}: unknown schema {other:?}: teach this test to read it"),
    };
    for vector in vectors {
        let id = vector["id"].as_str().unwrap_or("<no id>");
        report.record(name, id, run(vector));
    }
}

/// The stream of a `chunks` list and the chunk lengths.
fn chunks(vector: &Value) -> Result<(Vec<u8>, Split), String> {
    let list = vector["chunks"].as_array().ok_or("no chunks array")?;
    let mut stream = Vec::new();
    let mut lengths = Vec::new();
    for chunk in list {
        let before = stream.len();
        if let Some(text) = chunk["text"].as_str() {
            stream.extend_from_slice(text.as_bytes());
        } else if let Some(hex) = chunk["hex"].as_str() {
            stream.extend(decode_hex(hex)?);
        } else {
            return Err(format!("chunk is neither text nor hex: {chunk}"));
        }
        lengths.push(stream.len() - before);
    }
    Ok((stream, lengths))
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd-length hex {hex:?}"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("bad hex {hex:?}"))
        })
        .collect()
}

fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    value[key]
        .as_str()
        .ok_or_else(|| format!("missing string {key:?} in {value}"))
}

fn expected_event(value: &Value) -> Result<ParsedEvent, String> {
    Ok(ParsedEvent {
        event: str_field(value, "event")?.to_owned(),
        data: str_field(value, "data")?.to_owned(),
        id: str_field(value, "id")?.to_owned(),
    })
}

fn u64_list(value: &Value) -> Result<Vec<u64>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("not a list: {value}"))?
        .iter()
        .map(|v| v.as_u64().ok_or_else(|| format!("not a u64: {v}")))
        .collect()
}

/// Checks `final_last_event_id` and `retry_updates` where given.
fn check_common(expected: &Value, got: &Outcome) -> Result<(), String> {
    if let Some(id) = expected.get("final_last_event_id") {
        let want = id.as_str().ok_or("final_last_event_id is not a string")?;
        check_eq(
            "final last event id",
            got.final_last_event_id.as_str(),
            want,
        )?;
    }
    if let Some(retries) = expected.get("retry_updates") {
        check_eq("retry updates", got.retries(), u64_list(retries)?)?;
    }
    Ok(())
}

/// Schema `sse-vectors/1`.
fn run_sse_vector(vector: &Value) -> Result<(), String> {
    let (stream, given) = chunks(vector)?;
    let got = parse_all_ways(&stream, &given)?;
    let expected = &vector["expected"];
    let want = expected["events"]
        .as_array()
        .ok_or("no expected.events")?
        .iter()
        .map(expected_event)
        .collect::<Result<Vec<_>, _>>()?;
    check_eq("events", got.events(), want.iter().collect())?;
    check_common(expected, &got)?;
    // Comments are checked where the source suite checks them (`null` = not checked).
    for comments in [expected.get("comments"), vector.get("comments")]
        .into_iter()
        .flatten()
    {
        if let Some(list) = comments.as_array() {
            let want: Vec<&str> = list
                .iter()
                .map(|c| c.as_str().ok_or("comment is not a string"))
                .collect::<Result<_, _>>()?;
            check_eq("comments", got.comments(), want)?;
        }
    }
    Ok(())
}

/// Schema `sse-conformance-vectors/1` (sse-parse 0.1.0): chunks or a generator; events carry
/// the retry value processed since the previous event.
fn run_conformance_vector(vector: &Value) -> Result<(), String> {
    let (stream, given) = match vector.get("generator") {
        Some(generator) => generate(generator)?,
        None => chunks(vector)?,
    };
    let got = parse_all_ways(&stream, &given)?;
    let expected = &vector["expected"];
    let want: Vec<(ParsedEvent, Option<u64>)> = match &expected["events"] {
        Value::Array(list) => list
            .iter()
            .map(|e| Ok((expected_event(e)?, e["retry"].as_u64())))
            .collect::<Result<_, String>>()?,
        Value::Object(spec) => match spec.get("kind").and_then(Value::as_str) {
            Some("repeat") => {
                let count = spec
                    .get("count")
                    .and_then(Value::as_u64)
                    .ok_or("repeat without count")?;
                let e = &spec["event"];
                vec![(expected_event(e)?, e["retry"].as_u64()); count as usize]
            }
            Some("single_fill_event") => {
                let fill = str_field(&expected["events"], "fill_char")?;
                let count = spec
                    .get("fill_count")
                    .and_then(Value::as_u64)
                    .ok_or("no fill_count")?;
                let event = ParsedEvent {
                    event: str_field(&expected["events"], "event")?.to_owned(),
                    data: fill.repeat(count as usize),
                    id: str_field(&expected["events"], "id")?.to_owned(),
                };
                vec![(event, spec.get("retry").and_then(Value::as_u64))]
            }
            other => return Err(format!("unknown expected.events kind {other:?}")),
        },
        other => return Err(format!("bad expected.events {other}")),
    };
    let got_events: Vec<(ParsedEvent, Option<u64>)> = got
        .events()
        .into_iter()
        .cloned()
        .zip(got.retry_attachments())
        .collect();
    check_eq("events (with retry attachment)", got_events, want)?;
    check_common(expected, &got)
}

/// A generated stream and its chunking (`generator.repeat_stream` / `generator.long_line`).
fn generate(generator: &Value) -> Result<(Vec<u8>, Split), String> {
    let stream = match str_field(generator, "kind")? {
        "repeat_stream" => {
            let count = generator["count"].as_u64().ok_or("no count")?;
            str_field(generator, "unit_text")?.repeat(count as usize)
        }
        "long_line" => {
            let count = generator["fill_count"].as_u64().ok_or("no fill_count")?;
            format!(
                "{}{}{}",
                str_field(generator, "prefix")?,
                str_field(generator, "fill_char")?.repeat(count as usize),
                str_field(generator, "suffix")?
            )
        }
        other => return Err(format!("unknown generator kind {other:?}")),
    }
    .into_bytes();
    let size = generator["chunk_bytes"].as_u64().ok_or("no chunk_bytes")? as usize;
    if size == 0 {
        return Err("chunk_bytes is 0".into());
    }
    let mut lengths = vec![size; stream.len() / size];
    if stream.len() % size != 0 {
        lengths.push(stream.len() % size);
    }
    Ok((stream, lengths))
}

/// Schema `sse-line-vectors/1` (httpx-sse line splitter): the parser's own line splitter must
/// report exactly `expected_terminated_lines` (an unterminated tail is never a line).
fn run_line_vector(vector: &Value) -> Result<(), String> {
    let (stream, given) = chunks(vector)?;
    let want: Vec<&str> = vector["expected_terminated_lines"]
        .as_array()
        .ok_or("no expected_terminated_lines")?
        .iter()
        .map(|l| l.as_str().ok_or("line is not a string"))
        .collect::<Result<_, _>>()?;
    let tail = str_field(vector, "unterminated_tail")?;
    for (how, split) in splits(stream.len(), &given) {
        let mut parser = Parser::new();
        let mut lines = Vec::new();
        for piece in pieces(&stream, &split) {
            parser.split_lines(piece, &mut lines);
        }
        check_eq(
            &format!("lines ({how})"),
            &lines,
            &want.iter().map(|l| l.to_string()).collect(),
        )?;
        // The unterminated tail is held back, and becomes a line once terminated.
        parser.split_lines(b"\n", &mut lines);
        if !tail.is_empty() {
            check_eq(
                &format!("tail ({how})"),
                lines.last().map(String::as_str),
                Some(tail),
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw `.sse` streams (launchdarkly test-data), expectations from the vector README

fn run_sse_file(name: &str, path: &Path, report: &mut Report) {
    let stream = std::fs::read(path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let result =
        parse_all_ways(&stream, &[stream.len()]).and_then(|got| check_sse_file(file, &got));
    report.record(name, file, result);
}

fn check_sse_file(file: &str, got: &Outcome) -> Result<(), String> {
    let events = got.events();
    let summary: Vec<(&str, usize, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.data.len(), e.id.as_str()))
        .collect();
    match file {
        "one-event.sse" | "one-event-crlf.sse" => check_eq(
            "events (type, data bytes, id)",
            summary,
            vec![("patch", 499, "")],
        ),
        "big-event-followed-by-another.sse" | "big-event-followed-by-another-crlf.sse" => check_eq(
            "events (type, data bytes, id)",
            summary,
            vec![("patch", 1_395_107, ""), ("patch", 499, "")],
        ),
        "two-events.sse" | "two-events-crlf.sse" => {
            let got: Vec<(&str, &str, &str)> = events
                .iter()
                .map(|e| (e.event.as_str(), e.data.as_str(), e.id.as_str()))
                .collect();
            check_eq("events", got, vec![("one", "One", ""), ("two", "Two", "")])
        }
        "persistent-event-id.sse" => {
            let pairs: Vec<(&str, &str)> = events
                .iter()
                .map(|e| (e.event.as_str(), e.id.as_str()))
                .collect();
            check_eq(
                "events (type, id)",
                pairs,
                vec![("one", "1"), ("two", "1"), ("three", "3"), ("four", "3")],
            )?;
            check_eq("final last event id", got.final_last_event_id.as_str(), "3")
        }
        other => Err(format!(
            "no expectation known for {other}: add it from the vector README"
        )),
    }
}

//! What a decompressed file holds, told by its content (SPEC §10), and the CloudTrail
//! records read out of each envelope.
//!
//! | format | first bytes | a unit |
//! |---|---|---|
//! | [`Format::Records`] | `{"Records":[`, `[`, or a record object | a CloudTrail record (trail file, console download, `.jsonl`) |
//! | [`Format::LogExport`] | `2026-09-07T10:00:00.123Z ` | a line `<timestamp> <message>` (`aws logs create-export-task`) |
//! | [`Format::EventBridge`] | `{"version":"0",…,"detail-type":…` | an EventBridge event, JSON Lines or concatenated (Firehose, archives) |
//! | [`Format::LogEvents`] | `{"events":[` or `{"messageType":` | `FilterLogEvents` pages (the CLI's output, `logs:` reads) and CloudWatch Logs subscription records |
//! | [`Format::LookupEvents`] | `{"Events":[` | `LookupEvents` pages, the record as the JSON string `CloudTrailEvent` |
//!
//! A message (an export line's, a log event's) is an EventBridge event whose `detail`
//! is the record, or the bare record (a trail's own CloudWatch Logs delivery). The
//! timestamp a log line or log event carries is its delivery time: the event's time is
//! always the record's `eventTime`. A unit that cannot be read is one bad record, named
//! by its line (or page and position); the file's other units are kept.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{EventRow, ParseOptions, Parsed, Unit, parse_candidate};
use crate::error::ObjectError;

/// The shapes of file `ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CloudTrail's own shapes (SPEC §2): `{"Records":[…]}`, an array or a stream of
    /// records.
    Records,
    /// A CloudWatch Logs export: `<ISO-8601 timestamp> <message>` a line.
    LogExport,
    /// EventBridge events, one JSON object after another (lines or not).
    EventBridge,
    /// CloudWatch Logs events: `FilterLogEvents` pages or subscription records.
    LogEvents,
    /// Event History: `LookupEvents` pages.
    LookupEvents,
}

/// What [`sniff`] made of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Format(Format),
    /// The object CloudWatch Logs writes to check that it may write the bucket.
    WriteTest,
    /// The console's CSV download of Event History: no whole records in it.
    EventHistoryCsv,
    /// None of the shapes; the reason.
    Unknown(&'static str),
}

/// The largest CloudWatch Logs event: 256 KB, of which 26 bytes are overhead. A
/// message this long that does not parse was cut at the limit.
pub const LOG_EVENT_LIMIT: usize = 262_144 - 26;

/// Bytes after a byte-order mark and leading whitespace.
fn trimmed(data: &[u8]) -> &[u8] {
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    let start = data
        .iter()
        .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .unwrap_or(data.len());
    &data[start..]
}

/// The length of an ISO-8601 UTC timestamp at the start of `line`
/// (`YYYY-MM-DDTHH:MM:SS[.fff…]Z`), when there is one.
fn timestamp_len(line: &[u8]) -> Option<usize> {
    let digits = |r: std::ops::Range<usize>| {
        line.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, b: u8| line.get(i) == Some(&b);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return None;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        while line.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    at(i, b'Z').then_some(i + 1)
}

/// The keys that tell the JSON shapes apart (the first object of the file).
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
    #[serde(rename = "Events")]
    lookup: Option<IgnoredAny>,
    events: Option<IgnoredAny>,
    #[serde(rename = "logEvents")]
    log_events: Option<IgnoredAny>,
    #[serde(rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
}

/// The first key of the JSON object `body` starts with (`None` when it holds an escape
/// or does not look like one).
fn first_key(body: &[u8]) -> Option<&[u8]> {
    let rest = trimmed(body.strip_prefix(b"{")?);
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"').then(|| &rest[..end])
}

/// Tells what `data` (decompressed, not empty) holds.
pub fn sniff(data: &[u8]) -> Sniffed {
    let body = trimmed(data);
    match body.first() {
        None => Sniffed::Unknown("only whitespace"),
        Some(b'[') => Sniffed::Format(Format::Records),
        Some(b'{') => {
            // The first key decides the whole-file shapes, which can be large (an Event
            // History file is one object): they are not parsed twice.
            match first_key(body) {
                Some(b"Records") => return Sniffed::Format(Format::Records),
                Some(b"Events") => return Sniffed::Format(Format::LookupEvents),
                Some(b"events" | b"logEvents" | b"messageType" | b"logGroup" | b"logGroupName") => {
                    return Sniffed::Format(Format::LogEvents);
                }
                _ => {}
            }
            // Otherwise a unit of a stream (an EventBridge event, a record): its first
            // object is small and says which.
            let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Probe>();
            match stream.next() {
                Some(Ok(p)) if p.records.is_some() => Sniffed::Format(Format::Records),
                Some(Ok(p)) if p.lookup.is_some() => Sniffed::Format(Format::LookupEvents),
                Some(Ok(p)) if p.events.is_some() || p.log_events.is_some() => {
                    Sniffed::Format(Format::LogEvents)
                }
                Some(Ok(p)) if p.detail_type.is_some() => Sniffed::Format(Format::EventBridge),
                // A record, or JSON of another kind: CloudTrail's reader says which.
                _ => Sniffed::Format(Format::Records),
            }
        }
        Some(_) if timestamp_len(body).is_some_and(|n| body.get(n) == Some(&b' ')) => {
            Sniffed::Format(Format::LogExport)
        }
        Some(_) if body.starts_with(b"Permission Check Successful") => Sniffed::WriteTest,
        Some(_) => {
            let first = body.split(|b| *b == b'\n').next().unwrap_or(body);
            let first = String::from_utf8_lossy(first).to_ascii_lowercase();
            if first.contains(',') && (first.contains("event name") || first.contains("eventname"))
            {
                Sniffed::EventHistoryCsv
            } else {
                Sniffed::Unknown("content matches none of the formats ingest reads")
            }
        }
    }
}

/// An EventBridge event: its detail type and the record in `detail`.
#[derive(Deserialize)]
struct BusEvent<'a> {
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
}

/// The detail type of CloudTrail's events on EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Reads one message: an EventBridge event (the record in `detail`) or a bare record.
fn read_message<'a>(text: &'a str, options: &ParseOptions<'_>) -> Result<Unit<'a>, String> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    // A message as long as the event limit may have been cut there, before any CE name
    // the pre-filter would look for: it is validated whole, so that a cut record is
    // named rather than taken for a record of no CE role.
    if text.len() >= LOG_EVENT_LIMIT - 64
        && let Err(e) = serde_json::from_str::<IgnoredAny>(text)
    {
        return Err(cut_or(text, e));
    }
    if memchr::memmem::find(text.as_bytes(), b"\"detail-type\"").is_some() {
        let event: BusEvent<'a> = serde_json::from_str(text).map_err(|e| cut_or(text, e))?;
        if let Some(kind) = event.detail_type {
            if kind != CLOUDTRAIL_DETAIL_TYPE {
                return Ok(Unit::Skipped);
            }
            let detail = event.detail.ok_or("EventBridge event without `detail`")?;
            return parse_candidate(detail.get(), options, false);
        }
    }
    if !text.starts_with('{') {
        return Err(cut_or(
            text,
            format!("message is not a JSON object: {}", preview(text)),
        ));
    }
    parse_candidate(text, options, false).map_err(|e| cut_or(text, e))
}

/// The first characters of a text, for messages.
fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The error of a message that did not parse; a message as long as CloudWatch Logs'
/// event limit was cut there (a record larger than the limit cannot be delivered
/// whole), which the error says.
fn cut_or(text: &str, e: impl std::fmt::Display) -> String {
    if text.len() >= LOG_EVENT_LIMIT - 64 {
        format!(
            "message of {} bytes is cut at CloudWatch Logs' 256 KB event limit: the record is incomplete ({e})",
            text.len()
        )
    } else {
        e.to_string()
    }
}

impl<'a> Parsed<'a> {
    /// Adds what one message gave (`index`: its line or position, 0-based); a message
    /// skipped by rule is no record.
    fn message(&mut self, index: usize, read: Result<Unit<'a>, String>) {
        if !matches!(read, Ok(Unit::Skipped)) {
            self.records += 1;
        }
        self.push(index, read);
    }
}

/// The lines of a CloudWatch Logs export: `<timestamp> <message>` each (the timestamp
/// is when the message reached the log group, not the event's time).
pub fn parse_export<'a>(data: &'a [u8], options: &ParseOptions<'_>) -> Parsed<'a> {
    let mut out = Parsed {
        by_line: true,
        ..Parsed::default()
    };
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let read = match timestamp_len(line) {
            Some(t) if line.get(t) == Some(&b' ') => match std::str::from_utf8(&line[t + 1..]) {
                Ok(text) => read_message(text, options),
                Err(e) => Err(format!("message is not UTF-8: {e}")),
            },
            _ => Err(format!(
                "not `<timestamp> <message>`: {}",
                preview(&String::from_utf8_lossy(line))
            )),
        };
        out.message(n, read);
    }
    out
}

/// EventBridge events one after another, separated by newlines or not (Firehose
/// writes them back to back). A value that does not parse is one bad event; reading
/// resumes at the next line.
pub fn parse_bus_events<'a>(data: &'a [u8], options: &ParseOptions<'_>) -> Parsed<'a> {
    let mut out = Parsed::default();
    let mut at = 0usize;
    let mut index = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                at += stream.byte_offset();
                out.message(index, read_message(value.get(), options));
            }
            Some(Err(e)) => {
                let from = stream.byte_offset();
                let next =
                    memchr::memchr(b'\n', &rest[from..]).map_or(rest.len(), |p| from + p + 1);
                let text = String::from_utf8_lossy(&rest[..next]);
                out.message(index, Err(cut_or(text.trim(), e)));
                at += next;
            }
        }
        index += 1;
    }
    out
}

/// One log event of a `FilterLogEvents` page or a subscription record.
#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(rename = "logStreamName", borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// A `FilterLogEvents` page (`events`, with `logGroupName` when `logs:` wrote it) or a
/// CloudWatch Logs subscription record (`logGroup`, `logStream`, `logEvents`).
#[derive(Deserialize)]
struct LogPage<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<LogEvent<'a>>>,
    #[serde(rename = "logEvents", borrow, default)]
    log_events: Option<Vec<LogEvent<'a>>>,
    #[serde(rename = "logGroupName", alias = "logGroup", borrow, default)]
    group: Option<Cow<'a, str>>,
    #[serde(rename = "logStream", borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(rename = "messageType", borrow, default)]
    message_type: Option<Cow<'a, str>>,
}

/// The provenance of a log-group event: `logs:<group>/<stream>`.
pub fn log_origin(group: &str, stream: &str) -> String {
    format!("logs:{group}/{stream}")
}

/// `FilterLogEvents` pages and subscription records, one JSON object after another.
/// Each row's provenance is its log stream when the page names the group.
pub fn parse_log_events<'a>(
    data: &'a [u8],
    options: &ParseOptions<'_>,
) -> Result<Parsed<'a>, ObjectError> {
    let mut out = Parsed::default();
    let mut index = 0usize;
    each_page(data, &mut out, |page: LogPage<'_>, out| {
        if page.message_type.as_deref() == Some("CONTROL_MESSAGE") {
            return;
        }
        let events = page.events.or(page.log_events).unwrap_or_default();
        for event in events {
            let stream = event.stream.as_deref().or(page.stream.as_deref());
            let origin = match (page.group.as_deref(), stream) {
                (Some(g), Some(s)) => Some(log_origin(g, s)),
                _ => None,
            };
            // The message was a JSON string: its rows are copied out of it.
            let read = read_message(&event.message, options).map(|m| match m {
                Unit::Row(row) => Unit::Row(row.map(|r| {
                    let mut r = r.into_owned();
                    r.origin = origin.map(Cow::Owned);
                    r
                })),
                Unit::Skipped => Unit::Skipped,
            });
            out.message(index, read);
            index += 1;
        }
    })?;
    Ok(out)
}

/// Deserialises `data` as pages `P`, one JSON object after another, handing each to
/// `each`. A first page that does not parse means the file is not of this shape; a
/// later one is one bad record (the pages before it are kept).
fn each_page<'a, P: Deserialize<'a>>(
    data: &'a [u8],
    out: &mut Parsed<'a>,
    mut each: impl FnMut(P, &mut Parsed<'a>),
) -> Result<(), ObjectError> {
    let stream = serde_json::Deserializer::from_slice(data).into_iter::<P>();
    for (n, page) in stream.enumerate() {
        match page {
            Ok(p) => each(p, out),
            Err(e) if n == 0 => return Err(ObjectError::NotJson(e.to_string())),
            Err(e) => {
                let at = usize::try_from(out.records).unwrap_or(usize::MAX);
                out.records += 1;
                out.push(at, Err(format!("page {}: {e}", n + 1)));
                break;
            }
        }
    }
    Ok(())
}

/// One event of a `LookupEvents` page.
#[derive(Deserialize)]
struct LookupEvent<'a> {
    #[serde(rename = "CloudTrailEvent", borrow, default)]
    record: Option<Cow<'a, str>>,
    #[serde(rename = "EventId", borrow, default)]
    event_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LookupPage<'a> {
    #[serde(rename = "Events", borrow, default)]
    events: Vec<LookupEvent<'a>>,
}

/// `LookupEvents` pages (`aws cloudtrail lookup-events` output, one page or many one
/// after another): each event's record is the JSON string `CloudTrailEvent`.
pub fn parse_lookup_events<'a>(
    data: &'a [u8],
    options: &ParseOptions<'_>,
) -> Result<Parsed<'a>, ObjectError> {
    let mut out = Parsed::default();
    let mut index = 0usize;
    let mut records = 0usize;
    each_page(data, &mut out, |page: LookupPage<'_>, out| {
        records += page.events.iter().filter(|e| e.record.is_some()).count();
        for event in page.events {
            let read = match &event.record {
                Some(text) => parse_candidate(text, options, false).map(|u| match u {
                    Unit::Row(r) => Unit::Row(r.map(EventRow::into_owned)),
                    Unit::Skipped => Unit::Skipped,
                }),
                None => Err(format!(
                    "event {} has no CloudTrailEvent",
                    event.event_id.as_deref().unwrap_or("without an EventId")
                )),
            };
            out.message(index, read);
            index += 1;
        }
    })?;
    if records == 0 && index > 0 {
        // `Events` of something else than Event History.
        return Err(ObjectError::NotCloudTrail(
            "`Events` without a `CloudTrailEvent` in any: not `lookup-events` output".into(),
        ));
    }
    Ok(out)
}

/// Whether a key names a part of a CloudWatch Logs export (`…/<stream>/NNNNNN.gz`),
/// which may be empty.
pub fn is_export_part(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or("");
    let name = name.as_bytes();
    name.len() == 9 && name.ends_with(b".gz") && name[..6].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_told_by_content() {
        let f = |s: &str| sniff(s.as_bytes());
        assert_eq!(f(r#"{"Records":[]}"#), Sniffed::Format(Format::Records));
        assert_eq!(f(r#"[{"eventID":"a"}]"#), Sniffed::Format(Format::Records));
        assert_eq!(f("{\"eventID\":\"a\"}\n"), Sniffed::Format(Format::Records));
        assert_eq!(
            f("2026-09-07T10:00:00.123Z {\"eventID\":\"a\"}\n"),
            Sniffed::Format(Format::LogExport)
        );
        assert_eq!(
            f("2026-09-07T10:00:00Z {}"),
            Sniffed::Format(Format::LogExport)
        );
        assert_eq!(
            f(r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{}}"#),
            Sniffed::Format(Format::EventBridge)
        );
        assert_eq!(
            f("{\n  \"Events\": [],\n  \"NextToken\": \"x\"\n}"),
            Sniffed::Format(Format::LookupEvents)
        );
        assert_eq!(
            f(r#"{"events":[],"searchedLogStreams":[]}"#),
            Sniffed::Format(Format::LogEvents)
        );
        assert_eq!(
            f(r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#),
            Sniffed::Format(Format::LogEvents)
        );
        assert_eq!(f("Permission Check Successful"), Sniffed::WriteTest);
        assert_eq!(first_key(b"{ \n \"Events\": []}"), Some(&b"Events"[..]));
        assert_eq!(first_key(b"{\"a\\\"b\": 1}"), None);
        assert_eq!(first_key(b"[1]"), None);
        assert_eq!(
            f("Event ID,Event time,User name,Event name,Resource type\n1,2,3,4,5\n"),
            Sniffed::EventHistoryCsv
        );
        assert!(matches!(f("# notes\nhello"), Sniffed::Unknown(_)));
        // A timestamp not followed by a space is not an export line.
        assert!(matches!(f("2026-09-07T10:00:00Z"), Sniffed::Unknown(_)));
        assert!(matches!(f("2026-09-07 10:00:00 x"), Sniffed::Unknown(_)));
    }

    #[test]
    fn export_parts_are_named_by_six_digits() {
        assert!(is_export_part("exports/7f1e/stream-a/000000.gz"));
        assert!(is_export_part("000012.gz"));
        assert!(!is_export_part("exports/7f1e/stream-a/00000.gz"));
        assert!(!is_export_part("exports/x/0000a0.gz"));
        assert!(!is_export_part("exports/x/000000.json.gz"));
    }
}

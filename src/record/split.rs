//! Splitting a decompressed log file into raw records without parsing them.
//!
//! Accepted shapes (SPEC §2): one JSON object `{"Records":[...]}` (what CloudTrail
//! delivers), or one record per line / a stream of record objects (`.jsonl`, or `.json`
//! files that hold records one after another). A JSON array of records is accepted too
//! (the shape of published detonation logs). The records are returned as borrowed
//! [`RawValue`]s: validated JSON, but not yet deserialised, so that the CE pre-filter can
//! skip most of them before any field is read.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ObjectError;

#[derive(Deserialize)]
struct TopLevel<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<&'a RawValue>,
}

fn classify_json_error(e: &serde_json::Error) -> ObjectError {
    match e.classify() {
        serde_json::error::Category::Data => ObjectError::NotCloudTrail(e.to_string()),
        _ => ObjectError::NotJson(e.to_string()),
    }
}

fn skip_ws(data: &[u8]) -> usize {
    let mut i = 0;
    // A UTF-8 byte-order mark is tolerated.
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        i = 3;
    }
    while i < data.len() && matches!(data[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// Whether `data` is framed exactly as CloudTrail frames a log file: `{"Records":[`
/// first and `]}` last (whitespace allowed around the tokens). A truncated file fails
/// this check; it says nothing about the bytes in between.
pub fn has_records_envelope(data: &[u8]) -> bool {
    let mut i = skip_ws(data);
    let expect = |token: &[u8], i: &mut usize| -> bool {
        *i += skip_ws(&data[*i..]);
        if data[*i..].starts_with(token) {
            *i += token.len();
            true
        } else {
            false
        }
    };
    if !(expect(b"{", &mut i)
        && expect(b"\"Records\"", &mut i)
        && expect(b":", &mut i)
        && expect(b"[", &mut i))
    {
        return false;
    }
    let mut end = data.len();
    while end > i && matches!(data[end - 1], b' ' | b'\n' | b'\r' | b'\t') {
        end -= 1;
    }
    if end < i + 1 || data[end - 1] != b'}' {
        return false;
    }
    end -= 1;
    while end > i && matches!(data[end - 1], b' ' | b'\n' | b'\r' | b'\t') {
        end -= 1;
    }
    end > i - 1 && data[end - 1] == b']'
}

/// Byte ranges of the records of a file framed by [`has_records_envelope`], found by
/// the structural scan of [`crate::record::scan`] (strings skipped, braces balanced,
/// nothing else validated: the records a caller keeps are validated when they are
/// deserialised). `None` when the structure is not as expected; the caller then uses
/// [`split_records`], which validates the whole file and reports what is wrong.
pub fn record_ranges(data: &[u8]) -> Option<Vec<(usize, usize)>> {
    crate::record::scan::RecordScanner::new(data)?
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// The number of `"eventID"` keys in `data`: the record count of a file that is not
/// parsed (every CloudTrail record has exactly one).
pub fn count_event_ids(data: &[u8]) -> u64 {
    // Built once: building a searcher per call showed up in profiles.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"eventID\""));
    FINDER.find_iter(data).count() as u64
}

/// Splits `data` into raw records. `data` must be valid UTF-8 for records to parse;
/// invalid UTF-8 inside a string is reported as "not JSON".
pub fn split_records(data: &[u8]) -> Result<Vec<&RawValue>, ObjectError> {
    let start = skip_ws(data);
    if start == data.len() {
        return Err(ObjectError::Empty);
    }
    let body = &data[start..];
    let text =
        std::str::from_utf8(body).map_err(|e| ObjectError::NotJson(format!("not UTF-8: {e}")))?;
    match body[0] {
        b'[' => serde_json::from_str::<Vec<&RawValue>>(text).map_err(|e| classify_json_error(&e)),
        b'{' => {
            let mut stream = serde_json::Deserializer::from_str(text).into_iter::<TopLevel>();
            let first = match stream.next() {
                Some(Ok(top)) => top,
                Some(Err(e)) => return Err(classify_json_error(&e)),
                None => return Err(ObjectError::Empty),
            };
            let end_first = stream.byte_offset();
            if let Some(records) = first.records {
                let rest = &body[end_first..];
                if skip_ws(rest) != rest.len() {
                    return Err(ObjectError::NotCloudTrail(format!(
                        "data after the Records object at byte {}",
                        start + end_first
                    )));
                }
                return Ok(records);
            }
            if first.event_id.is_none() {
                return Err(ObjectError::NotCloudTrail(
                    "no `Records` array and not a record (no eventID)".into(),
                ));
            }
            // A stream of records, one JSON object after another.
            let mut out = Vec::new();
            for (i, value) in serde_json::Deserializer::from_str(text)
                .into_iter::<&RawValue>()
                .enumerate()
            {
                match value {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        return Err(ObjectError::NotJson(format!("record {i}: {e}")));
                    }
                }
            }
            Ok(out)
        }
        other => Err(ObjectError::NotJson(format!(
            "starts with byte 0x{other:02x}, expected `{{` or `[`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(data: &str) -> Result<usize, ObjectError> {
        split_records(data.as_bytes()).map(|v| v.len())
    }

    #[test]
    fn shapes() {
        assert_eq!(n(r#"{"Records":[{"eventID":"a"},{"eventID":"b"}]}"#), Ok(2));
        assert_eq!(n(r#"{"Records":[]}"#), Ok(0));
        assert_eq!(n("{\"eventID\":\"a\"}\n{\"eventID\":\"b\"}\n"), Ok(2));
        assert_eq!(n(r#"[{"eventID":"a"}]"#), Ok(1));
        assert_eq!(n("  \n"), Err(ObjectError::Empty));
    }

    #[test]
    fn envelope() {
        assert!(has_records_envelope(b"{\"Records\":[{\"eventID\":\"a\"}]}"));
        assert!(has_records_envelope(b" { \"Records\" : [ ] } \n"));
        assert!(!has_records_envelope(b"{\"Records\":[{\"eventID\":\"a\"}"));
        assert!(!has_records_envelope(b"{\"Other\":[]}"));
        assert!(!has_records_envelope(b"{\"Records\":["));
        assert!(!has_records_envelope(b""));
        assert_eq!(
            count_event_ids(b"{\"Records\":[{\"eventID\":1},{\"sharedEventID\":2,\"eventID\":3}]}"),
            2
        );
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            n(r#"{"foo":1}"#),
            Err(ObjectError::NotCloudTrail(_))
        ));
        assert!(matches!(
            n(r#"{"Records":5}"#),
            Err(ObjectError::NotCloudTrail(_))
        ));
        assert!(matches!(
            n(r#"{"Records":[{"eventID":"a"}"#),
            Err(ObjectError::NotJson(_))
        ));
        assert!(matches!(n("hello"), Err(ObjectError::NotJson(_))));
        assert!(matches!(
            n(r#"{"Records":[]} x"#),
            Err(ObjectError::NotCloudTrail(_))
        ));
    }
}

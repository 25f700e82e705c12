//! Record parsing and the CE filter: from the bytes of one log file to lake rows.
//!
//! ```text
//! bytes ─gunzip─▶ JSON text ─split─▶ raw records ─prefilter─▶ typed Record ─classify+derive─▶ EventRow
//! ```
//! Each step can reject: the whole object (not gzip, not JSON, not CloudTrail) or one
//! record (too large, wrong field types, bad timestamp). Rejected records are counted
//! and the first reasons kept; the rest of the file is still ingested.

pub mod derive;
pub mod envelope;
pub mod filter;
pub mod gunzip;
pub mod model;
pub mod scan;
pub mod split;

use crate::config::Config;
use crate::error::{ObjectError, RecordError};
pub use derive::EventRow;
pub use filter::Kind;
use filter::Prefilter;
use model::Record;

/// Default limit of one record's size (CloudTrail's own limit is 256 KB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 << 20;

/// How many record errors are kept verbatim per object (all are counted).
const KEPT_RECORD_ERRORS: usize = 5;

/// Parameters of record parsing.
pub struct ParseOptions<'c> {
    pub config: &'c Config,
    pub prefilter: &'c Prefilter,
    pub all_events: bool,
    pub max_record_bytes: usize,
}

/// What one log file yielded.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// What the file held (see [`envelope`]).
    pub format: envelope::Format,
    pub records: u64,
    pub rows: Vec<EventRow<'a>>,
    pub bad_records: u64,
    pub record_errors: Vec<RecordError>,
    /// Units skipped by rule (see [`Unit::Skipped`]).
    pub skipped: u64,
    /// Units are lines (errors name the line).
    pub by_line: bool,
}

impl Default for Parsed<'_> {
    fn default() -> Self {
        Self {
            format: envelope::Format::Records,
            records: 0,
            rows: Vec::new(),
            bad_records: 0,
            record_errors: Vec::new(),
            skipped: 0,
            by_line: false,
        }
    }
}

/// Parses one record; `Ok(None)` when it is not kept (not a CE event, or skipped by
/// rule: an Insights record).
pub fn parse_record<'a>(
    raw: &'a str,
    options: &ParseOptions<'_>,
) -> Result<Option<EventRow<'a>>, String> {
    parse_candidate(raw, options, false).map(Unit::row)
}

/// What one unit of a file (a record, a message) gave.
#[allow(clippy::large_enum_variant)] // returned once per unit and moved on, never stored
pub(crate) enum Unit<'a> {
    /// The row, or `None` when the record is not kept (not a CE event).
    Row(Option<EventRow<'a>>),
    /// Skipped by rule and counted: a CloudTrail Insights record (no API call: no
    /// `eventName`), an EventBridge event of another detail type than CloudTrail's.
    Skipped,
}

impl<'a> Unit<'a> {
    fn row(self) -> Option<EventRow<'a>> {
        match self {
            Unit::Row(r) => r,
            Unit::Skipped => None,
        }
    }
}

/// The category of an Insights record (`eventCategory`).
const INSIGHT_CATEGORY: &str = "Insight";

/// [`parse_record`]; `known_hit`: the pre-filter already found a CE name inside `raw`,
/// so it is not searched again.
pub(crate) fn parse_candidate<'a>(
    raw: &'a str,
    options: &ParseOptions<'_>,
    known_hit: bool,
) -> Result<Unit<'a>, String> {
    if raw.len() > options.max_record_bytes {
        return Err(format!(
            "record of {} bytes exceeds the limit of {} bytes",
            raw.len(),
            options.max_record_bytes
        ));
    }
    if !known_hit && !options.all_events && !options.prefilter.may_match(raw.as_bytes()) {
        return Ok(Unit::Row(None));
    }
    let record: Record<'a> = match serde_json::from_str(raw) {
        Ok(r) => r,
        Err(_) => {
            // An Insights record is no API call: skipped by rule, not rejected.
            #[derive(serde::Deserialize)]
            struct Category<'c> {
                #[serde(rename = "eventCategory", borrow)]
                category: Option<std::borrow::Cow<'c, str>>,
            }
            if serde_json::from_str::<Category<'_>>(raw)
                .is_ok_and(|c| c.category.as_deref() == Some(INSIGHT_CATEGORY))
            {
                return Ok(Unit::Skipped);
            }
            // Parse again, slowly, only to name the field at fault.
            let mut de = serde_json::Deserializer::from_str(raw);
            let e = match serde_path_to_error::deserialize::<_, Record<'a>>(&mut de) {
                Ok(_) => return Err("record could not be parsed".into()),
                Err(e) => e,
            };
            return Err(format!("field {}: {}", e.path(), e.inner()));
        }
    };
    if record_is_insight(&record) {
        return Ok(Unit::Skipped);
    }
    derive::derive(record, options.config, options.all_events).map(Unit::Row)
}

/// Whether a record that parsed is an Insights record all the same.
fn record_is_insight(record: &Record<'_>) -> bool {
    record.event_category.as_deref() == Some(INSIGHT_CATEGORY)
}

/// Parses a decompressed log file.
///
/// Fast path: in a file in CloudTrail's own envelope (`{"Records":[` … `]}`) only the
/// records that hold a CE name can be CE events. The pre-filter finds the first CE name
/// in the file; the structural scan ([`scan::RecordScanner`]) walks the records up to
/// the one holding it, which is parsed; the search goes on from that record's end, and
/// so on. After the last CE name the rest of the file is neither scanned nor parsed:
/// its records are counted by their `"eventID"` keys (every CloudTrail record has
/// exactly one), as are all records of a file without any CE name. A file whose
/// structure the scan does not accept, any other shape, and every file with
/// `all_events` are split and validated record by record.
///
/// The other envelopes of SPEC §10 (log exports, EventBridge events, log events,
/// Event History pages) are told by content ([`envelope::sniff`]) and read unit by
/// unit. Content of none of the shapes is [`ObjectError::NotALog`].
pub fn parse_log<'a>(
    data: &'a [u8],
    options: &ParseOptions<'_>,
) -> Result<Parsed<'a>, ObjectError> {
    use envelope::{Format, Sniffed};
    if !split::has_records_envelope(data) {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(ObjectError::Empty);
        }
        let format = match envelope::sniff(data) {
            Sniffed::Format(f) => f,
            Sniffed::WriteTest => return Err(ObjectError::ExportWriteTest),
            Sniffed::EventHistoryCsv => return Err(ObjectError::EventHistoryCsv),
            Sniffed::Unknown(why) => return Err(ObjectError::NotALog(why.into())),
        };
        let mut parsed = match format {
            Format::Records => return parse_validated(data, options),
            Format::LogExport => envelope::parse_export(data, options),
            Format::EventBridge => envelope::parse_bus_events(data, options),
            Format::LogEvents => envelope::parse_log_events(data, options)?,
            Format::LookupEvents => envelope::parse_lookup_events(data, options)?,
        };
        parsed.format = format;
        return Ok(parsed);
    }
    if !options.all_events {
        let Some(first) = options.prefilter.find(data, 0) else {
            return Ok(Parsed {
                records: split::count_event_ids(data),
                ..Parsed::default()
            });
        };
        if let Some(parsed) = parse_matching(data, first, options) {
            return Ok(parsed);
        }
    } else if let Some(ranges) = split::record_ranges(data) {
        let mut out = Parsed {
            records: ranges.len() as u64,
            ..Parsed::default()
        };
        for (index, (a, b)) in ranges.into_iter().enumerate() {
            match std::str::from_utf8(&data[a..b]) {
                Ok(text) => out.push(index, parse_candidate(text, options, false)),
                // Invalid UTF-8: the validating path below names the object's fault.
                Err(_) => return parse_validated(data, options),
            }
        }
        return Ok(out);
    }
    parse_validated(data, options)
}

/// The records of an enveloped file around the pre-filter's hits, the first at
/// `first`; `None` when the structure is not as expected (the caller then validates the
/// whole file).
fn parse_matching<'a>(
    data: &'a [u8],
    first: usize,
    options: &ParseOptions<'_>,
) -> Option<Parsed<'a>> {
    let mut scanner = scan::RecordScanner::new(data)?;
    let mut out = Parsed::default();
    let mut index = 0usize;
    let mut hit = Some(first);
    let mut scanned_to = 0usize;
    while let Some(at) = hit {
        // The record holding the hit (or, were the hit between records, the next one).
        let (a, b) = loop {
            let (a, b) = scanner.next()?.ok()?;
            index += 1;
            if b > at {
                break (a, b);
            }
        };
        let text = std::str::from_utf8(&data[a..b]).ok()?;
        out.push(index - 1, parse_candidate(text, options, a <= at));
        scanned_to = b;
        hit = options.prefilter.find(data, b);
    }
    out.records = index as u64 + split::count_event_ids(&data[scanned_to..]);
    Some(out)
}

/// Splits the whole file with full JSON validation, then parses record by record.
fn parse_validated<'a>(
    data: &'a [u8],
    options: &ParseOptions<'_>,
) -> Result<Parsed<'a>, ObjectError> {
    let raws = split::split_records(data)?;
    let mut out = Parsed {
        records: raws.len() as u64,
        ..Parsed::default()
    };
    for (index, raw) in raws.into_iter().enumerate() {
        out.push(index, parse_candidate(raw.get(), options, false));
    }
    Ok(out)
}

impl<'a> Parsed<'a> {
    fn push(&mut self, index: usize, r: Result<Unit<'a>, String>) {
        match r {
            Ok(Unit::Row(Some(row))) => self.rows.push(row),
            Ok(Unit::Row(None)) => {}
            Ok(Unit::Skipped) => self.skipped += 1,
            Err(message) => {
                self.bad_records += 1;
                if self.record_errors.len() < KEPT_RECORD_ERRORS {
                    self.record_errors.push(RecordError {
                        index,
                        line: self.by_line,
                        message,
                    });
                }
            }
        }
    }
}

//! The generated CE activity in the shapes of the other places CE events live (SPEC
//! §10): a CloudWatch Logs export of the log group the CE stack feeds, EventBridge
//! events as Firehose delivers them, and an Event History file as `aws cloudtrail
//! lookup-events` prints it. Every shape holds the same CE events (assume and activity)
//! the trail holds, except where a source lacks some by its nature: Event History holds
//! management events only (no S3 object-level data events).
//!
//! Written as the generation goes (a stream's export part every [`PART_LINES`] lines,
//! an EventBridge file per account × day, Event History pages as they fill): nothing
//! holds the whole range.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::records::{Ev, iso};
use super::rng::Rng;
use crate::config::Config;
use crate::error::GenerateError;
use crate::record::filter::{Kind, Prefilter};
use crate::record::gunzip::gzip;
use crate::record::{DEFAULT_MAX_RECORD_BYTES, ParseOptions, parse_record};

/// Lines per part file of an export stream (`000000.gz`, `000001.gz`, …).
pub const PART_LINES: usize = 1000;

/// The export's folder under the output folder (`--s3-prefix` of `create-export-task`).
pub const EXPORT_PREFIX: &str = "exportedlogs";

/// Events per `LookupEvents` page (its documented maximum is 50).
const PAGE_EVENTS: usize = 50;

/// Where the other shapes go.
#[derive(Debug, Clone, Default)]
pub struct ShapeOutputs {
    /// A CloudWatch Logs export of the log group.
    pub log_group_export: Option<PathBuf>,
    /// EventBridge events, JSON Lines, gzip, in Firehose's hourly folders.
    pub eventbridge: Option<PathBuf>,
    /// `lookup-events` output.
    pub event_history: Option<PathBuf>,
}

impl ShapeOutputs {
    pub fn any(&self) -> bool {
        self.log_group_export.is_some()
            || self.eventbridge.is_some()
            || self.event_history.is_some()
    }
}

/// What the shapes received.
#[derive(Debug, Default, Clone, serde::Serialize, PartialEq)]
pub struct ShapeSummary {
    pub ce_events: u64,
    pub export_files: u64,
    pub eventbridge_files: u64,
    pub event_history_events: u64,
}

/// One CE event, with what the envelopes need.
struct CeEvent {
    t_ms: i64,
    record: Value,
    text: String,
}

impl CeEvent {
    fn field(&self, name: &str) -> &str {
        self.record.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// The Event History file being written: plain, or (a name ending in `.gz`) one gzip
/// member per page, so that it is written as it goes.
struct History {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    gzip: bool,
}

impl History {
    fn write(&mut self, text: &[u8]) -> Result<(), GenerateError> {
        let r = if self.gzip {
            self.file.write_all(&gzip(text, 6))
        } else {
            self.file.write_all(text)
        };
        r.map_err(io_err(&self.path))
    }
}

/// Writes the shapes as the generator hands over each account × day of events.
pub struct ShapeWriter {
    outputs: ShapeOutputs,
    config: Config,
    prefilter: Prefilter,
    rng: Rng,
    task_id: String,
    /// Per export stream: lines waiting for their part, and the next part's number.
    streams: BTreeMap<String, (Vec<(i64, String)>, u32)>,
    history: Option<History>,
    page: Vec<Value>,
    pages: u64,
    pub summary: ShapeSummary,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn uuid(rng: &mut Rng) -> String {
    let h = |rng: &mut Rng, n: usize| rng.string(b"0123456789abcdef", n);
    format!(
        "{}-{}-4{}-a{}-{}",
        h(rng, 8),
        h(rng, 4),
        h(rng, 3),
        h(rng, 3),
        h(rng, 12)
    )
}

impl ShapeWriter {
    pub fn new(outputs: ShapeOutputs, seed: u64) -> Result<Self, GenerateError> {
        let config = Config::default();
        let prefilter = Prefilter::new(&config);
        let mut rng = Rng::derive(seed, &[0x5EA9E5]);
        let task_id = uuid(&mut rng);
        let history = match &outputs.event_history {
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let file =
                    std::io::BufWriter::new(std::fs::File::create(path).map_err(io_err(path))?);
                let mut h = History {
                    file,
                    path: path.clone(),
                    gzip: path.to_string_lossy().ends_with(".gz"),
                };
                h.write(b"{\"Events\": [")?;
                Some(h)
            }
            None => None,
        };
        if let Some(dir) = &outputs.log_group_export {
            // What CloudWatch Logs writes first, to check it may write the bucket.
            super::write_file(
                &dir.join(EXPORT_PREFIX).join("aws-logs-write-test"),
                b"Permission Check Successful",
            )?;
        }
        Ok(Self {
            outputs,
            config,
            prefilter,
            rng,
            task_id,
            streams: BTreeMap::new(),
            history,
            page: Vec::new(),
            pages: 0,
            summary: ShapeSummary::default(),
        })
    }

    /// The CE events (assume, activity) of one account × day's records, in time order.
    fn ce_events(&self, events: &[Ev]) -> Vec<CeEvent> {
        let options = ParseOptions {
            config: &self.config,
            prefilter: &self.prefilter,
            all_events: false,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        };
        let mut out: Vec<CeEvent> = events
            .iter()
            .filter(|e| {
                matches!(
                    parse_record(&e.json, &options),
                    Ok(Some(row)) if matches!(row.kind, Some(Kind::Assume | Kind::Activity))
                )
            })
            .filter_map(|e| {
                Some(CeEvent {
                    t_ms: e.t_ms,
                    record: serde_json::from_str(&e.json).ok()?,
                    text: e.json.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.t_ms.cmp(&b.t_ms).then_with(|| a.text.cmp(&b.text)));
        out
    }

    /// Takes one account × day of generated records (duplicates left out: a trail's
    /// duplicate deliveries are not the log group's).
    pub fn day(&mut self, account: &str, day: &str, events: &[Ev]) -> Result<(), GenerateError> {
        let ce = self.ce_events(events);
        self.summary.ce_events += ce.len() as u64;
        let mut bus_lines = String::new();
        for ev in &ce {
            let bus = self.bus_event(ev);
            if self.outputs.log_group_export.is_some() {
                // EventBridge delivers to the log group a few seconds after the call,
                // now and then minutes later: the line's time is never the event's.
                let delay = if self.rng.chance(0.05) {
                    self.rng.range(60_000, 600_000)
                } else {
                    self.rng.range(500, 30_000)
                };
                let stream = format!("ce-{account}-{}", ev.field("awsRegion"));
                let entry = self.streams.entry(stream.clone()).or_default();
                entry.0.push((ev.t_ms + delay, bus.clone()));
                if entry.0.len() >= PART_LINES {
                    self.flush_stream(&stream)?;
                }
            }
            if self.outputs.eventbridge.is_some() {
                bus_lines.push_str(&bus);
                bus_lines.push('\n');
            }
            if self.history.is_some()
                && ev.record.get("managementEvent") != Some(&Value::Bool(false))
            {
                self.history_event(ev)?;
            }
        }
        if let Some(dir) = &self.outputs.eventbridge
            && !bus_lines.is_empty()
        {
            let (y, m, d) = (&day[0..4], &day[5..7], &day[8..10]);
            let name = format!(
                "ce-access-stream-1-{day}-00-00-00-{}.gz",
                uuid(&mut self.rng)
            );
            let path = dir
                .join(y)
                .join(m)
                .join(d)
                .join(format!("{account}-{name}"));
            super::write_file(&path, &gzip(bus_lines.as_bytes(), 6))?;
            self.summary.eventbridge_files += 1;
        }
        Ok(())
    }

    /// The EventBridge event of a CloudTrail record, its keys in EventBridge's order
    /// (`detail` last), the record as generated (the trail's bytes).
    fn bus_event(&mut self, ev: &CeEvent) -> String {
        let source = ev.field("eventSource").trim_end_matches(".amazonaws.com");
        let text = |v: &str| Value::String(v.to_string()).to_string();
        format!(
            "{{\"version\":\"0\",\"id\":{},\"detail-type\":{},\"source\":{},\"account\":{},\"time\":{},\"region\":{},\"resources\":[],\"detail\":{}}}",
            text(&uuid(&mut self.rng)),
            text(crate::record::envelope::CLOUDTRAIL_DETAIL_TYPE),
            text(&format!("aws.{source}")),
            text(ev.field("recipientAccountId")),
            text(&iso(ev.t_ms)),
            text(ev.field("awsRegion")),
            ev.text
        )
    }

    /// Adds one event to the Event History output.
    fn history_event(&mut self, ev: &CeEvent) -> Result<(), GenerateError> {
        let identity = ev.record.get("userIdentity");
        let username = identity
            .and_then(|i| i.get("arn"))
            .and_then(Value::as_str)
            .and_then(|a| a.rsplit('/').next())
            .or_else(|| {
                ev.record
                    .pointer("/requestParameters/roleSessionName")
                    .and_then(Value::as_str)
            });
        let read_only = ev.record.get("readOnly").and_then(Value::as_bool);
        self.page.push(json!({
            "EventId": ev.field("eventID"),
            "EventName": ev.field("eventName"),
            "ReadOnly": read_only.map(|r| r.to_string()),
            "AccessKeyId": identity.and_then(|i| i.get("accessKeyId")),
            "EventTime": ev.field("eventTime"),
            "EventSource": ev.field("eventSource"),
            "Username": username,
            "Resources": [],
            "CloudTrailEvent": ev.text,
        }));
        self.summary.event_history_events += 1;
        if self.page.len() >= PAGE_EVENTS {
            self.flush_page()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) -> Result<(), GenerateError> {
        let Some(h) = &mut self.history else {
            return Ok(());
        };
        let mut text = Vec::new();
        for event in self.page.drain(..) {
            if self.pages > 0 {
                text.push(b',');
            }
            text.extend_from_slice(b"\n    ");
            serde_json::to_writer(&mut text, &event)
                .map_err(|e| io_err(&h.path)(std::io::Error::other(e)))?;
            self.pages += 1;
        }
        if !text.is_empty() {
            h.write(&text)?;
        }
        Ok(())
    }

    /// Writes the waiting lines of an export stream as its next part.
    fn flush_stream(&mut self, stream: &str) -> Result<(), GenerateError> {
        let Some(dir) = &self.outputs.log_group_export else {
            return Ok(());
        };
        let Some((lines, part)) = self.streams.get_mut(stream) else {
            return Ok(());
        };
        if lines.is_empty() {
            return Ok(());
        }
        lines.sort_by_key(|(t, _)| *t);
        let mut text = String::new();
        for (t, message) in lines.drain(..) {
            let stamp = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            text.push_str(&stamp);
            text.push(' ');
            text.push_str(&message);
            text.push('\n');
        }
        let path = dir
            .join(EXPORT_PREFIX)
            .join(&self.task_id)
            .join(stream)
            .join(format!("{:06}.gz", *part));
        *part += 1;
        super::write_file(&path, &gzip(text.as_bytes(), 6))?;
        self.summary.export_files += 1;
        Ok(())
    }

    /// Writes what is still waiting and closes the files.
    pub fn finish(mut self) -> Result<ShapeSummary, GenerateError> {
        let streams: Vec<String> = self.streams.keys().cloned().collect();
        for s in streams {
            self.flush_stream(&s)?;
        }
        self.flush_page()?;
        if let Some(mut h) = self.history.take() {
            h.write(b"\n]}\n")?;
            h.file.flush().map_err(io_err(&h.path))?;
        }
        Ok(self.summary)
    }
}

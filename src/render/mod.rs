//! Rendering query results: terminal table, CSV, JSON, JSON Lines, Markdown.
//!
//! Renderers never compute: they turn a table ([`Table`]) into bytes on any writer.
//! Contract of the formats (SPEC §5): times as RFC 3339 UTC (`2026-10-01T09:30:00Z`,
//! or local with an offset when asked), dates `YYYY-MM-DD`, ratios as numbers, missing
//! values as null (empty in CSV and tables). Attacker-controlled strings are escaped:
//! CSV cells that a spreadsheet would run as a formula are neutralised, JSON is built by
//! a serializer, Markdown cells escape `|` and line breaks.

pub mod html;
pub mod svg;
mod text;

use std::io::Write;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use polars::prelude::*;
use serde_json::Value;

pub use text::{markdown, report_markdown, table};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
    Md,
}

/// One cell of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// µs since the epoch, UTC.
    Time(i64),
    Date(NaiveDate),
}

/// A rendered-ready result: column names and rows of cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// How times are written.
#[derive(Debug, Clone, Copy)]
pub struct TimeStyle {
    /// Print local times (with offset) in this zone instead of UTC.
    pub local: Option<Tz>,
}

impl Cell {
    fn from_any(v: AnyValue<'_>) -> Cell {
        match v {
            AnyValue::Null => Cell::Null,
            AnyValue::Boolean(b) => Cell::Bool(b),
            AnyValue::String(s) => Cell::Text(s.to_string()),
            AnyValue::StringOwned(s) => Cell::Text(s.to_string()),
            AnyValue::Int8(x) => Cell::Int(x.into()),
            AnyValue::Int16(x) => Cell::Int(x.into()),
            AnyValue::Int32(x) => Cell::Int(x.into()),
            AnyValue::Int64(x) => Cell::Int(x),
            AnyValue::UInt8(x) => Cell::Int(x.into()),
            AnyValue::UInt16(x) => Cell::Int(x.into()),
            AnyValue::UInt32(x) => Cell::Int(x.into()),
            AnyValue::UInt64(x) => Cell::Int(i64::try_from(x).unwrap_or(i64::MAX)),
            AnyValue::Float32(x) => Cell::Float(x.into()),
            AnyValue::Float64(x) => Cell::Float(x),
            AnyValue::Date(d) => {
                Cell::Date(NaiveDate::from_num_days_from_ce_opt(d + 719_163).unwrap_or_default())
            }
            AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _) => {
                Cell::Time(match unit {
                    TimeUnit::Nanoseconds => t.div_euclid(1000),
                    TimeUnit::Microseconds => t,
                    TimeUnit::Milliseconds => t.saturating_mul(1000),
                })
            }
            other => match other.get_str() {
                // Categorical strings (the view's grouping columns).
                Some(s) => Cell::Text(s.to_string()),
                None => Cell::Text(other.to_string()),
            },
        }
    }

    /// The cell as display text (empty for null).
    pub fn text(&self, style: TimeStyle) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => format_float(*f),
            Cell::Bool(b) => b.to_string(),
            Cell::Time(t) => format_time(*t, style),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }

    fn json(&self, style: TimeStyle) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Time(_) | Cell::Date(_) => Value::String(self.text(style)),
        }
    }
}

fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        let s = format!("{f:.6}");
        s.trim_end_matches('0').to_string()
    }
}

/// RFC 3339, seconds precision: UTC `Z`, or local with its offset.
pub fn format_time(micros: i64, style: TimeStyle) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_micros(micros) else {
        return String::new();
    };
    match style.local {
        Some(tz) => t
            .with_timezone(&tz)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        None => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

impl Table {
    /// Converts a polars result.
    pub fn from_frame(df: &DataFrame) -> PolarsResult<Table> {
        let columns: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut rows = Vec::with_capacity(df.height());
        let cols = df.columns();
        for i in 0..df.height() {
            let mut row = Vec::with_capacity(cols.len());
            for c in cols {
                row.push(Cell::from_any(c.get(i)?));
            }
            rows.push(row);
        }
        Ok(Table { columns, rows })
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.rows.truncate(n);
    }

    /// Rows as JSON objects with exactly the columns as keys.
    pub fn json_rows(&self, style: TimeStyle) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                for (k, v) in self.columns.iter().zip(r) {
                    m.insert(k.clone(), v.json(style));
                }
                Value::Object(m)
            })
            .collect()
    }
}

/// Neutralises a CSV cell a spreadsheet would evaluate (`= + - @`, tab, CR).
pub fn csv_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `t` in `format`.
pub fn write(
    out: &mut dyn Write,
    t: &Table,
    format: Format,
    style: TimeStyle,
) -> std::io::Result<()> {
    match format {
        Format::Table => writeln!(out, "{}", table(t, style)),
        Format::Md => writeln!(out, "{}", markdown(t, style)),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &t.json_rows(style))?;
            writeln!(out)
        }
        Format::Jsonl => {
            for row in t.json_rows(style) {
                serde_json::to_writer(&mut *out, &row)?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Csv => {
            let header: Vec<String> = t.columns.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", header.join(","))?;
            for r in &t.rows {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| match c {
                        Cell::Text(s) => csv_field(&csv_safe(s)),
                        other => csv_field(&other.text(style)),
                    })
                    .collect();
                writeln!(out, "{}", cells.join(","))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: TimeStyle = TimeStyle { local: None };

    fn t() -> Table {
        Table {
            columns: vec!["a".into(), "b".into(), "c".into()],
            rows: vec![vec![
                Cell::Text("=HYPERLINK(\"x\")".into()),
                Cell::Float(-12.5),
                Cell::Time(1_790_000_000_000_000),
            ]],
        }
    }

    #[test]
    fn csv_neutralises_formulas_but_not_numbers() {
        let mut out = Vec::new();
        write(&mut out, &t(), Format::Csv, UTC).ok();
        let s = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            s,
            "a,b,c\n\"'=HYPERLINK(\"\"x\"\")\",-12.5,2026-09-21T14:13:20Z\n"
        );
        for bad in ["+1", "-cmd", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_safe(bad).starts_with('\''), "{bad}");
        }
    }

    #[test]
    fn json_is_valid_for_any_string() {
        let mut tab = t();
        tab.rows[0][0] = Cell::Text("\"</script>\u{0}\n\u{202e}".into());
        let mut out = Vec::new();
        write(&mut out, &tab, Format::Json, UTC).ok();
        let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        assert_eq!(v[0]["a"], "\"</script>\u{0}\n\u{202e}");
        assert_eq!(v[0]["b"], -12.5);
        assert_eq!(v[0]["c"], "2026-09-21T14:13:20Z");
    }

    #[test]
    fn local_times_carry_their_offset() {
        let style = TimeStyle {
            local: Some(chrono_tz::Europe::Berlin),
        };
        assert_eq!(
            format_time(1_790_000_000_000_000, style),
            "2026-09-21T16:13:20+02:00"
        );
    }
}

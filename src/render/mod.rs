//! Rendering query results: terminal table, CSV, JSON, JSON Lines, Markdown.
//!
//! Renderers never compute: they turn a table ([`Table`]) into bytes on any writer.
//! Contract of the formats (SPEC §5): times as RFC 3339 UTC (`2026-10-01T09:30:00Z`,
//! or local with an offset when asked), dates `YYYY-MM-DD`, ratios as numbers, missing
//! values as null (empty in CSV and tables). Attacker-controlled strings are escaped:
//! CSV cells that a spreadsheet would run as a formula are neutralised, JSON is built by
//! a serializer, Markdown cells escape `|` and line breaks.

pub mod charts;
pub mod html;
pub mod svg;
mod text;
pub mod timeline;

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

    /// Writes the cell as a JSON value (what [`Cell::json`] would serialise to).
    fn write_json(&self, out: &mut dyn Write, style: TimeStyle) -> std::io::Result<()> {
        match self {
            Cell::Null => out.write_all(b"null"),
            Cell::Text(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from),
            Cell::Int(i) => write!(out, "{i}"),
            Cell::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => serde_json::to_writer(&mut *out, &n).map_err(std::io::Error::from),
                None => out.write_all(b"null"),
            },
            Cell::Bool(b) => write!(out, "{b}"),
            Cell::Time(_) | Cell::Date(_) => {
                serde_json::to_writer(&mut *out, &self.text(style)).map_err(std::io::Error::from)
            }
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
        None => utc_text(&t),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` written digit by digit (a feed renders millions of times;
/// a strftime pattern is parsed again at every call). Years outside 0..=9999 take
/// chrono's formatter, which signs and widens them.
fn utc_text(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    b.iter().map(|&c| char::from(c)).collect()
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

    /// Writes each row as one compact JSON object (the columns as keys, in column
    /// order), `separator` before every row but the first of the whole output (`first`
    /// says whether one was written yet). Rows are written straight from the cells: a
    /// feed of millions of rows builds no JSON values.
    pub fn write_json_rows(
        &self,
        out: &mut dyn Write,
        style: TimeStyle,
        separator: &str,
        first: &mut bool,
    ) -> std::io::Result<()> {
        let keys = json_keys(self.columns.iter().map(String::as_str))?;
        for row in &self.rows {
            write_json_object(out, &keys, separator, first, |out, j| match row.get(j) {
                Some(v) => v.write_json(out, style),
                None => out.write_all(b"null"),
            })?;
        }
        Ok(())
    }

    /// Rows as JSON objects with exactly the columns as keys.
    /// Writes [`Table::json_rows`] as `serde_json::to_writer_pretty` lays out that array
    /// at nesting `level` (two spaces each) inside an enclosing value, one row at a
    /// time: the same bytes, without holding every row's `Value` at once.
    pub fn write_json_rows_pretty(
        &self,
        out: &mut dyn Write,
        style: TimeStyle,
        level: usize,
    ) -> std::io::Result<()> {
        if self.rows.is_empty() {
            return out.write_all(b"[]");
        }
        let inner = "  ".repeat(level + 1);
        let newline = format!("\n{inner}");
        // serde_json's map is sorted by key, and a repeated name keeps its last cell:
        // the columns in that order, once each.
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by(|a, b| self.columns[*a].cmp(&self.columns[*b]).then(b.cmp(a)));
        order.dedup_by(|later, kept| self.columns[*later] == self.columns[*kept]);
        let keys: Vec<Vec<u8>> = order
            .iter()
            .map(|i| serde_json::to_vec(&self.columns[*i]))
            .collect::<Result<_, _>>()?;
        out.write_all(b"[")?;
        let mut buf = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            buf.clear();
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(newline.as_bytes());
            if r.len() != self.columns.len() {
                // A short row (never made by a query): the general way.
                let mut m = serde_json::Map::new();
                for (k, v) in self.columns.iter().zip(r) {
                    m.insert(k.clone(), v.json(style));
                }
                let mut one = Vec::new();
                serde_json::to_writer_pretty(&mut one, &Value::Object(m))?;
                // A JSON text holds no raw line break but those of the layout.
                for (n, line) in one.split(|b| *b == b'\n').enumerate() {
                    if n > 0 {
                        buf.extend_from_slice(newline.as_bytes());
                    }
                    buf.extend_from_slice(line);
                }
                out.write_all(&buf)?;
                continue;
            }
            // serde_json's pretty layout of one object, written directly: the same bytes
            // without a map, a key or a text copied per cell.
            if order.is_empty() {
                buf.extend_from_slice(b"{}");
            } else {
                buf.push(b'{');
                for (n, (c, key)) in order.iter().zip(&keys).enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(newline.as_bytes());
                    buf.extend_from_slice(b"  ");
                    buf.extend_from_slice(key);
                    buf.extend_from_slice(b": ");
                    r[*c].write_json(&mut buf, style)?;
                }
                buf.extend_from_slice(newline.as_bytes());
                buf.push(b'}');
            }
            out.write_all(&buf)?;
        }
        out.write_all(b"\n")?;
        out.write_all("  ".repeat(level).as_bytes())?;
        out.write_all(b"]")
    }

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

/// Writes the rows of `df` as [`Table::write_json_rows`] does, straight from the
/// frame: strings are borrowed, not copied into cells, and the frame is walked in
/// slices of one chunk each, so that a feed of millions of events costs no more memory
/// than one slice.
pub fn write_frame_json_rows(
    out: &mut dyn Write,
    df: &DataFrame,
    style: TimeStyle,
    separator: &str,
    first: &mut bool,
) -> std::io::Result<()> {
    let keys = json_keys(df.get_column_names().iter().map(|c| c.as_str()))?;
    for_each_slice(df, |mut part| {
        part.rechunk_mut();
        // Categorical columns (the view's grouping columns) as plain strings, once per
        // slice: a string cell is then read from its array, not through an `AnyValue`.
        let cols = part
            .columns()
            .iter()
            .map(|c| {
                if c.dtype().is_categorical() || c.dtype().is_enum() {
                    c.cast(&DataType::String)
                } else {
                    Ok(c.clone())
                }
            })
            .collect::<PolarsResult<Vec<Column>>>()
            .map_err(std::io::Error::other)?;
        let strings: Vec<Option<&StringChunked>> = cols.iter().map(|c| c.str().ok()).collect();
        for i in 0..part.height() {
            write_json_object(out, &keys, separator, first, |out, j| {
                if let Some(Some(ca)) = strings.get(j) {
                    return match ca.get(i) {
                        Some(s) => {
                            serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from)
                        }
                        None => out.write_all(b"null"),
                    };
                }
                match cols.get(j) {
                    Some(c) => Cell::from_any(c.get(i).map_err(std::io::Error::other)?)
                        .write_json(out, style),
                    None => out.write_all(b"null"),
                }
            })?;
        }
        Ok(())
    })
}

/// Calls `f` on each slice of `FRAME_SLICE` rows of `df`, in order.
fn for_each_slice(
    df: &DataFrame,
    mut f: impl FnMut(DataFrame) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut offset = 0usize;
    while offset < df.height() {
        f(df.slice(i64::try_from(offset).unwrap_or(i64::MAX), FRAME_SLICE))?;
        offset += FRAME_SLICE;
    }
    Ok(())
}

/// Frames the JSON objects that `rows` writes (it is given the separator between rows
/// and the flag [`write_json_object`] keeps): a JSON array of one object per line
/// (`[]` when `empty`), or JSON Lines.
fn write_json_framed(
    out: &mut dyn Write,
    lines: bool,
    empty: bool,
    rows: impl FnOnce(&mut dyn Write, &str, &mut bool) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut first = true;
    if lines {
        rows(out, "\n", &mut first)?;
        return if first { Ok(()) } else { out.write_all(b"\n") };
    }
    if empty {
        return out.write_all(b"[]\n");
    }
    out.write_all(b"[\n")?;
    rows(out, ",\n", &mut first)?;
    out.write_all(b"\n]\n")
}

/// Each column name as a JSON key followed by `:`.
fn json_keys<'a>(names: impl Iterator<Item = &'a str>) -> std::io::Result<Vec<String>> {
    names
        .map(|c| serde_json::to_string(c).map(|k| format!("{k}:")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::from)
}

/// Writes one compact JSON object of `keys`, the value of key `j` by `value`, with
/// `separator` before it unless it is the `first` of the output.
fn write_json_object(
    out: &mut dyn Write,
    keys: &[String],
    separator: &str,
    first: &mut bool,
    mut value: impl FnMut(&mut dyn Write, usize) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if !*first {
        out.write_all(separator.as_bytes())?;
    }
    *first = false;
    out.write_all(b"{")?;
    for (j, k) in keys.iter().enumerate() {
        if j > 0 {
            out.write_all(b",")?;
        }
        out.write_all(k.as_bytes())?;
        value(out, j)?;
    }
    out.write_all(b"}")
}

/// Rows of a frame converted at a time when it is written as a stream.
const FRAME_SLICE: usize = 20_000;

/// Writes `df` in `format`: JSON and JSON Lines straight from the frame
/// ([`write_frame_json_rows`]), CSV through a [`Table`] per slice of rows, a terminal
/// table and Markdown (whose column widths need every row) through one [`Table`].
pub fn write_frame(
    out: &mut dyn Write,
    df: &DataFrame,
    format: Format,
    style: TimeStyle,
) -> std::io::Result<()> {
    match format {
        Format::Json | Format::Jsonl => write_json_framed(
            out,
            format == Format::Jsonl,
            df.height() == 0,
            |out, separator, first| write_frame_json_rows(out, df, style, separator, first),
        ),
        Format::Csv => {
            let columns: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect();
            write_csv_header(out, &columns)?;
            for_each_slice(df, |part| {
                let t = Table::from_frame(&part).map_err(std::io::Error::other)?;
                write_csv_rows(out, &t, style)
            })
        }
        Format::Table | Format::Md => {
            let t = Table::from_frame(df).map_err(std::io::Error::other)?;
            write(out, &t, format, style)
        }
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

fn write_csv_header(out: &mut dyn Write, columns: &[String]) -> std::io::Result<()> {
    let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
    writeln!(out, "{}", header.join(","))
}

fn write_csv_rows(out: &mut dyn Write, t: &Table, style: TimeStyle) -> std::io::Result<()> {
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
        Format::Json | Format::Jsonl => write_json_framed(
            out,
            format == Format::Jsonl,
            t.rows.is_empty(),
            |out, separator, first| t.write_json_rows(out, style, separator, first),
        ),
        Format::Csv => {
            write_csv_header(out, &t.columns)?;
            write_csv_rows(out, t, style)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: TimeStyle = TimeStyle { local: None };

    #[test]
    fn rows_written_one_at_a_time_are_serde_jsons_pretty_bytes() {
        // Keys out of order, one repeated (the map keeps its last cell), every kind of
        // cell, a text to escape, a short row, and a table of no column.
        let t = Table {
            columns: vec!["b".into(), "a".into(), "t".into(), "a".into()],
            rows: vec![
                vec![
                    Cell::Text("line\nbreak \"q\" \u{7}é".into()),
                    Cell::Int(1),
                    Cell::Time(0),
                    Cell::Int(-7),
                ],
                vec![
                    Cell::Null,
                    Cell::Float(2.5),
                    Cell::Bool(true),
                    Cell::Float(f64::NAN),
                ],
                vec![
                    Cell::Date(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap_or_default()),
                    Cell::Float(1e21),
                    Cell::Bool(false),
                    Cell::Text(String::new()),
                ],
                vec![Cell::Text("short".into()), Cell::Int(3)],
            ],
        };
        let empty = Table {
            columns: vec!["x".into()],
            rows: vec![],
        };
        let none = Table {
            columns: vec![],
            rows: vec![vec![], vec![]],
        };
        let expected = serde_json::to_string_pretty(&serde_json::json!({
            "events": t.json_rows(UTC),
            "none": empty.json_rows(UTC),
            "zero": none.json_rows(UTC),
        }))
        .unwrap_or_default();
        let mut out: Vec<u8> = b"{\n  \"events\": ".to_vec();
        t.write_json_rows_pretty(&mut out, UTC, 1)
            .unwrap_or_default();
        out.extend_from_slice(b",\n  \"none\": ");
        empty
            .write_json_rows_pretty(&mut out, UTC, 1)
            .unwrap_or_default();
        out.extend_from_slice(b",\n  \"zero\": ");
        none.write_json_rows_pretty(&mut out, UTC, 1)
            .unwrap_or_default();
        out.extend_from_slice(b"\n}");
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

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
    fn utc_times_are_written_as_chrono_writes_them() {
        // Around the epoch, leap days, the end of 9999 and beyond (signed, widened).
        for micros in [
            0i64,
            -1,
            951_782_400_000_000,
            1_790_000_000_123_456,
            253_402_300_799_000_000,
            253_402_300_800_000_000,
            -62_167_219_200_000_001,
        ] {
            let t = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
            assert_eq!(
                format_time(micros, UTC),
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "{micros}"
            );
        }
    }

    /// A frame of more rows than one slice, with every kind of cell.
    fn frame(rows: usize) -> DataFrame {
        let n = i64::try_from(rows).unwrap_or(0);
        let text: Vec<Option<String>> = (0..n)
            .map(|i| (i % 7 != 0).then(|| format!("=x\"{i}\n,é")))
            .collect();
        let cat = Series::new(
            "cat".into(),
            (0..n).map(|i| format!("c{}", i % 3)).collect::<Vec<_>>(),
        )
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap_or_default();
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("text".into(), text),
            cat.into(),
            Column::new("int".into(), (0..n).collect::<Vec<_>>()),
            Column::new(
                "float".into(),
                (0..n).map(|i| i as f64 / 4.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "flag".into(),
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            ),
            Column::new(
                "time".into(),
                (0..n).map(|i| i * 1_000_000_007).collect::<Vec<_>>(),
            )
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap_or_else(|_| Column::new_empty("time".into(), &DataType::Null)),
        ])
        .unwrap_or_default();
        // Several chunks, as a frame read from several files has.
        df = df.vstack(&df.clone()).unwrap_or_default();
        df
    }

    #[test]
    fn frames_stream_as_their_tables_render() {
        let df = frame(12_345);
        assert_eq!(df.height(), 24_690);
        assert!(df.height() > FRAME_SLICE);
        let table = Table::from_frame(&df).unwrap_or_default();
        for format in [Format::Json, Format::Jsonl, Format::Csv] {
            let (mut streamed, mut whole) = (Vec::new(), Vec::new());
            write_frame(&mut streamed, &df, format, UTC).unwrap_or_default();
            write(&mut whole, &table, format, UTC).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&whole),
                "{format:?}"
            );
        }
        let mut json = Vec::new();
        write_frame(&mut json, &df, Format::Json, UTC).unwrap_or_default();
        let v: Value = serde_json::from_slice(&json).unwrap_or(Value::Null);
        assert_eq!(v, Value::Array(table.json_rows(UTC)));
        assert_eq!(v[1]["text"], "=x\"1\n,é");
        assert_eq!(v[0]["text"], Value::Null);
        assert_eq!(v[5]["cat"], "c2");
        assert_eq!(v[2]["float"], 0.5);
        assert_eq!(v[1]["time"], "1970-01-01T00:16:40Z");
        let mut empty = Vec::new();
        write_frame(&mut empty, &df.head(Some(0)), Format::Json, UTC).unwrap_or_default();
        assert_eq!(empty, b"[]\n");
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

//! Queries over the lake (polars). This stage reads only Parquet: it never sees raw
//! CloudTrail JSON, so every report answers from the same data.

pub mod action_groups;
pub mod anomalies;
pub mod audit;
pub mod calendar;
pub mod denied_alarm;
pub mod dialect;
pub mod in_place;
pub mod order;
pub mod report;
pub mod timeline;
pub mod top_actions;
pub mod view;
pub mod view_scan;
pub mod widgets;

use std::path::Path;

use polars::prelude::*;

/// The lake schema as polars types (for an empty lake).
fn polars_schema() -> Schema {
    use crate::lake::schema::{COLUMNS, ColumnKind};
    let mut schema = Schema::with_capacity(COLUMNS.len() + 1);
    for c in COLUMNS {
        let dtype = match c.kind {
            ColumnKind::Time => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            ColumnKind::Text => DataType::String,
            ColumnKind::Bool => DataType::Boolean,
            ColumnKind::Int => DataType::Int64,
            ColumnKind::Resources => DataType::List(Box::new(DataType::Struct(vec![
                Field::new("arn".into(), DataType::String),
                Field::new("type".into(), DataType::String),
                Field::new("account".into(), DataType::String),
            ]))),
        };
        schema.insert(c.name.into(), dtype);
    }
    schema.insert("month".into(), DataType::String);
    schema
}

/// The columns of a lake file, as polars reads them: files of an earlier schema
/// version lack the columns added since (see `lake::schema::readable`), which are
/// read as nulls.
fn file_schema() -> Schema {
    let mut schema = polars_schema();
    schema.shift_remove("month");
    schema
}

/// Scans the lake's event files lazily, with the `month` Hive partition column: exactly
/// the files its ledger commits (SPEC §11; a damaged one is an error that names it, a
/// stray one is not read). A lake without event files (nothing kept yet) scans as an
/// empty frame.
pub fn scan_lake(root: &Path) -> PolarsResult<LazyFrame> {
    let files = crate::lake::check::read_files(root)
        .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
    if files.is_empty() {
        return Ok(DataFrame::empty_with_schema(&polars_schema()).lazy());
    }
    // Hive partitions are read from the paths after `<root>/events/`.
    let events = format!("{}/", root.join("events").display());
    let paths: polars_buffer::Buffer<PlRefPath> = files
        .iter()
        .map(|f| PlRefPath::new(f.to_string_lossy().as_ref()))
        .collect();
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            hive_start_idx: events.len(),
            schema: None,
            try_parse_dates: false,
        },
        schema: Some(Arc::new(file_schema())),
        allow_missing_columns: true,
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet_files(paths, args)
}

/// Number of rows in the lake (every file, duplicates included).
pub fn count_rows(root: &Path) -> PolarsResult<u64> {
    let df = scan_lake(root)?.select([len().alias("n")]).collect()?;
    let n = df.column("n")?.get(0)?;
    Ok(match n {
        AnyValue::UInt32(v) => u64::from(v),
        AnyValue::UInt64(v) => v,
        AnyValue::Int64(v) => v.max(0) as u64,
        AnyValue::Int32(v) => v.max(0) as u64,
        other => {
            return Err(PolarsError::ComputeError(
                format!("unexpected count {other:?}").into(),
            ));
        }
    })
}

/// `collect` on a chosen polars engine.
pub trait CollectOn {
    /// Collects on `engine` (a plan of ours always has one sink).
    fn collect_on(self, engine: Engine) -> PolarsResult<DataFrame>;
}

impl CollectOn for LazyFrame {
    fn collect_on(self, engine: Engine) -> PolarsResult<DataFrame> {
        match self.collect_with_engine(engine)? {
            polars_core::query_result::QueryResult::Single(df) => Ok(df),
            polars_core::query_result::QueryResult::Multiple(_) => Err(PolarsError::ComputeError(
                "a query with several sinks where one frame was expected".into(),
            )),
        }
    }
}

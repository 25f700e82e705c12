//! Queries over the lake (polars). This stage reads only Parquet: it never sees raw
//! CloudTrail JSON, so every report answers from the same data.

pub mod anomalies;
pub mod view;
pub mod widgets;

use std::path::Path;

use polars::prelude::*;

/// Scans every event file of the lake lazily, with the `month` Hive partition column.
pub fn scan_lake(root: &Path) -> PolarsResult<LazyFrame> {
    let events = root.join("events");
    let path = format!("{}/", events.display());
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            hive_start_idx: 0,
            schema: None,
            try_parse_dates: false,
        },
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(path), args)
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

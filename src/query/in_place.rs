//! In-place access to the materialised view's columns, for the widgets counted in Rust
//! (`top_actions.rs`, `write_actions.rs`): category codes, flags and times read from
//! the view's own buffers (a column of several chunks is made one first), and the
//! SQL's output types and `ORDER BY` applied to the few result rows.

use polars::prelude::*;
use polars::sql::SQLContext;
use polars_arrow::bitmap::Bitmap;

use super::CollectOn as _;

/// One column's codes, in place: 0 for null, else the code + 1.
pub struct Codes<'a> {
    pub values: &'a [u32],
    validity: Option<&'a Bitmap>,
}

impl Codes<'_> {
    pub fn get(&self, i: usize) -> u32 {
        if let Some(valid) = self.validity
            && valid.get(i) != Some(true)
        {
            return 0;
        }
        self.values.get(i).map_or(0, |c| c.saturating_add(1))
    }
}

/// One boolean column, in place: `Some(value)`, or `None` for null.
pub struct Flags<'a> {
    values: &'a Bitmap,
    validity: Option<&'a Bitmap>,
}

impl Flags<'_> {
    pub fn get(&self, i: usize) -> Option<bool> {
        if let Some(valid) = self.validity
            && valid.get(i) != Some(true)
        {
            return None;
        }
        self.values.get(i)
    }
}

/// `name` of `events` as one chunk of `physical` values.
pub fn one_chunk(events: &DataFrame, name: &str, physical: &DataType) -> PolarsResult<Series> {
    let s = events
        .column(name)?
        .as_materialized_series()
        .to_physical_repr()
        .cast(physical)?;
    Ok(if s.n_chunks() == 1 { s } else { s.rechunk() })
}

/// [`one_chunk`] of each of `names`.
pub fn one_chunks(
    events: &DataFrame,
    names: &[&str],
    physical: &DataType,
) -> PolarsResult<Vec<Series>> {
    names
        .iter()
        .map(|c| one_chunk(events, c, physical))
        .collect()
}

pub fn no_chunk(name: &str) -> PolarsError {
    PolarsError::NoData(format!("column {name} has no chunk").into())
}

pub fn codes<'a>(s: &'a Series, name: &str) -> PolarsResult<Codes<'a>> {
    let arr = s
        .u32()?
        .downcast_iter()
        .next()
        .ok_or_else(|| no_chunk(name))?;
    Ok(Codes {
        values: arr.values().as_slice(),
        validity: arr.validity(),
    })
}

pub fn flags<'a>(s: &'a Series, name: &str) -> PolarsResult<Flags<'a>> {
    let arr = s
        .bool()?
        .downcast_iter()
        .next()
        .ok_or_else(|| no_chunk(name))?;
    Ok(Flags {
        values: arr.values(),
        validity: arr.validity(),
    })
}

/// One integer column (times as µs), in place: `None` for null.
pub struct Ints<'a> {
    values: &'a [i64],
    validity: Option<&'a Bitmap>,
}

impl Ints<'_> {
    pub fn get(&self, i: usize) -> Option<i64> {
        if let Some(valid) = self.validity
            && valid.get(i) != Some(true)
        {
            return None;
        }
        self.values.get(i).copied()
    }
}

pub fn ints<'a>(s: &'a Series, name: &str) -> PolarsResult<Ints<'a>> {
    let arr = s
        .i64()?
        .downcast_iter()
        .next()
        .ok_or_else(|| no_chunk(name))?;
    Ok(Ints {
        values: arr.values().as_slice(),
        validity: arr.validity(),
    })
}

/// `frame` with the columns and types of `schema` (the widget SQL's output schema),
/// sorted by the SQL's final `ORDER BY` (run by polars on these rows).
pub fn in_sql_order(
    frame: DataFrame,
    schema: &Schema,
    sql: &str,
    engine: Engine,
) -> PolarsResult<DataFrame> {
    let columns = schema
        .iter()
        .map(|(name, dtype)| {
            frame
                .column(name)
                .and_then(|c| c.cast(dtype))
                .map(|c| c.with_name(name.clone()))
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    let frame = DataFrame::new(frame.height(), columns)?;
    let order_by = sql
        .rfind("ORDER BY")
        .map(|at| &sql[at..])
        .ok_or_else(|| PolarsError::ComputeError("the widget's SQL has no ORDER BY".into()))?;
    let mut local = SQLContext::new();
    local.register("result", frame.lazy());
    local
        .execute(&format!("SELECT * FROM result {order_by}"))?
        .collect_on(engine)
}

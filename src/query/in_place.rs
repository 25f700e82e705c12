//! In-place access to the materialised view's columns, for the widgets counted in Rust
//! (`top_actions.rs`, `action_groups.rs`, `denied_alarm.rs`): category codes, flags
//! and times read from the view's own buffers (a column of several chunks is made one
//! first), and the SQL's output types and `ORDER BY` applied to the few result rows.

use polars::prelude::*;
use polars::sql::SQLContext;
use polars_arrow::bitmap::Bitmap;

use super::CollectOn as _;

/// One numeric column's values and validity, in place.
pub struct Values<'a, T> {
    pub values: &'a [T],
    validity: Option<&'a Bitmap>,
}

impl<T: Copy> Values<'_, T> {
    /// The value of row `i`; `None` for null.
    pub fn get(&self, i: usize) -> Option<T> {
        if let Some(valid) = self.validity
            && valid.get(i) != Some(true)
        {
            return None;
        }
        self.values.get(i).copied()
    }
}

/// A categorical column's physical codes.
pub type Codes<'a> = Values<'a, u32>;

impl Codes<'_> {
    /// Row `i` as a group key part: 0 for null, else the code + 1.
    pub fn code(&self, i: usize) -> u32 {
        self.get(i).map_or(0, |c| c.saturating_add(1))
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

/// The values of `s` (one chunk of `T`, see [`one_chunk`]).
pub fn values<'a, T: PolarsNumericType>(
    s: &'a Series,
    name: &str,
) -> PolarsResult<Values<'a, T::Native>> {
    let arr = s
        .unpack::<T>()?
        .downcast_iter()
        .next()
        .ok_or_else(|| no_chunk(name))?;
    Ok(Values {
        values: arr.values().as_slice(),
        validity: arr.validity(),
    })
}

/// The category codes of `s` (a categorical column's physical `u32`s).
pub fn codes<'a>(s: &'a Series, name: &str) -> PolarsResult<Codes<'a>> {
    values::<UInt32Type>(s, name)
}

/// The columns both native widgets group by (role, source, action), as one chunk of
/// codes each, and those codes.
pub const ACTION_KEY: [&str; 3] = ["role", "event_source", "event_name"];

pub fn action_key_series(events: &DataFrame) -> PolarsResult<Vec<Series>> {
    one_chunks(events, &ACTION_KEY, &DataType::UInt32)
}

pub fn action_key_codes(series: &[Series]) -> PolarsResult<[Codes<'_>; 3]> {
    let [role, source, name] = series else {
        return Err(no_chunk("role"));
    };
    Ok([
        codes(role, "role")?,
        codes(source, "event_source")?,
        codes(name, "event_name")?,
    ])
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

/// A hash table keyed by codes (foldhash: the keys are small integers).
pub type Table<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// `rows` as the row indices polars takes (a row past `IdxSize` cannot be in a view).
pub fn row_indices(rows: impl IntoIterator<Item = usize>) -> IdxCa {
    IdxCa::from_vec(
        "rows".into(),
        rows.into_iter()
            .map(|r| IdxSize::try_from(r).unwrap_or(IdxSize::MAX))
            .collect(),
    )
}

/// Column `name` of `events` at `rows`, as text (a categorical's strings).
pub fn text_at(
    events: &DataFrame,
    name: &str,
    rows: impl IntoIterator<Item = usize>,
) -> PolarsResult<Series> {
    events
        .column(name)?
        .as_materialized_series()
        .take(&row_indices(rows))?
        .cast(&DataType::String)
}

/// `STRING_AGG(DISTINCT name, ',' ORDER BY name)` over `names`: sorted, each once,
/// joined by commas; `None` (SQL's null) when there are none.
pub fn distinct_joined<S: AsRef<str> + Ord>(mut names: Vec<S>) -> Option<String> {
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name.as_ref());
    }
    (!names.is_empty()).then_some(out)
}

/// `count` over `0..rows` cut into about one range per thread, run in parallel; the
/// results in range order.
pub fn per_range<T: Send>(
    rows: usize,
    count: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    let step = rows
        .div_ceil(rayon::current_num_threads().clamp(1, 64))
        .max(1);
    (0..rows)
        .step_by(step)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| count(start..(start + step).min(rows)))
        .collect()
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

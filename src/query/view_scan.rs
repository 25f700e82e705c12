//! The view's scan of the lake: Parquet column chunks decoded straight into the frame
//! the view holds, text columns as categoricals without ever building their strings,
//! rows written once, in the order the view wants.
//!
//! Every text column the view holds as categories is dictionary-encoded by the writer
//! (a row group of 128 k rows has a few hundred distinct accounts, roles, actions, IPs
//! or sessions; only the ids, which differ in every row, are written without one), so
//! a row group's column is a small dictionary and one key per row. polars' own scan
//! turns each key back into a string view, and the view then turns every view into a
//! category again. Here the keys are decoded as they are (polars-parquet's categorical
//! decoder), each dictionary entry is looked up in the global categories once, and the
//! keys are mapped through that table. Rows that are not CE events, or not of the
//! requested account or role, are masked out while the other columns are decoded.
//!
//! The scan runs in two phases. The first decodes the masks and the plain columns
//! (times, ids, flags), from which the caller computes the row order it wants
//! ([`scan_arranged`]). The second decodes the categorical columns one at a time, each
//! row group into its own stretch of one buffer, and gathers that buffer into the
//! column in the wanted order. So each categorical column is allocated once (plus one
//! buffer shared by all of them), never concatenated or reordered afterwards: on a VM
//! every fresh page costs a fault and a clear, and a two-million-event view used to
//! touch five times the memory it holds.
//!
//! A column chunk the categorical decoder cannot take (a writer that fell back to plain
//! pages for a huge dictionary, or no dictionary at all) is decoded as strings and
//! converted row by row, the way [`super::view`] did it for every column: the result
//! is the same either way (a test compares this scan with polars' on the same lake).
//! Anything else unexpected (a file without one of the columns, a type the lake does
//! not write) is an error, and the caller falls back to polars' scan.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, Utf8ViewArray};
use polars_arrow::bitmap::{Bitmap, BitmapBuilder};
use polars_arrow::datatypes::{
    ArrowDataType, DTYPE_CATEGORICAL_NEW, Field as ArrowField, IntegerType, Metadata,
};
use polars_buffer::Buffer;
use polars_parquet::read::{
    self as pq, BasicDecompressor, ColumnChunkMetadata, FileMetadata, Filter, PageReader,
    RowGroupMetadata,
};
use rayon::prelude::*;

/// What to read: `names` in order; those in `categorical` become categoricals of the
/// global categories. Rows are kept where `kind` is one of `kinds` and, if given,
/// `account`, `role` and `engineer` are equal to these.
pub struct ScanSpec<'a> {
    pub names: &'a [&'a str],
    pub categorical: &'a [&'a str],
    pub kinds: &'a [&'a str],
    /// Also keeps every kind (then `kinds` is not read).
    pub all_kinds: bool,
    /// Keeps only the rows that pass this test of a few text columns.
    pub row_test: Option<RowTest<'a>>,
    pub account: Option<&'a str>,
    pub role: Option<&'a str>,
    pub engineer: Option<&'a str>,
    /// Adds the view's `resource` column (a categorical; see [`resource_codes`]),
    /// which needs `target_instance`, `bucket`, `object_key` and `db` (categorical)
    /// among `names`. It reads the lake's `resources` too: only its `arn` leaf,
    /// unless `resources` is among `names`.
    pub resource: bool,
    /// Only the row groups whose `event_time` statistics meet this range (all when
    /// `None`, or when a row group has no statistics).
    pub within: Option<crate::lake::sources::TimeRange>,
}

/// A test of a row from the values of a few text columns (at most four; `None`:
/// null), decided once per distinct combination of values in a row group.
#[derive(Clone, Copy)]
pub struct RowTest<'a> {
    pub columns: &'a [&'a str],
    pub keep: &'a (dyn Fn(&[Option<&str>]) -> bool + Sync),
}

/// Category codes while a column is built: the global category code plus one, `0`
/// for null (so a zeroed buffer is a column of nulls).
type Code = u32;

/// One lake file: its footer, read once. Each column chunk is read when it is decoded
/// (so a scan holds the chunks being decoded, never a whole file, and never reads the
/// columns it does not need); the file is opened for each read, so a lake of
/// thousands of files never has more than a few open.
struct LakeFile {
    path: PathBuf,
    meta: FileMetadata,
    schema: polars_arrow::datatypes::ArrowSchema,
}

fn err(path: &Path, what: impl std::fmt::Display) -> PolarsError {
    PolarsError::ComputeError(format!("{}: {what}", path.display()).into())
}

impl LakeFile {
    fn open(path: &Path) -> PolarsResult<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| err(path, e))?;
        let meta = pq::read_metadata(&mut file).map_err(|e| err(path, e))?;
        let schema = pq::infer_schema(&meta).map_err(|e| err(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            meta,
            schema,
        })
    }

    /// Whether `rg`'s `event_time` statistics meet `range` (true without them).
    fn meets(&self, rg: &RowGroupMetadata, range: &crate::lake::sources::TimeRange) -> bool {
        use polars_parquet::parquet::statistics::Statistics;
        let Some(chunk) = rg
            .columns_under_root_iter("event_time")
            .and_then(|mut it| it.next())
        else {
            return true;
        };
        match chunk.statistics(&self.meta.footer_buf) {
            Some(Ok(Statistics::Int64(s))) => match (s.min_value, s.max_value) {
                (Some(lo), Some(hi)) => {
                    range.from.is_none_or(|f| hi >= f) && range.to.is_none_or(|t| lo < t)
                }
                _ => true,
            },
            _ => true,
        }
    }

    fn chunks<'a>(
        &'a self,
        rg: &'a RowGroupMetadata,
        name: &str,
    ) -> PolarsResult<Vec<&'a ColumnChunkMetadata>> {
        rg.columns_under_root_iter(name)
            .map(|it| it.collect())
            .ok_or_else(|| err(&self.path, format!("no column {name}")))
    }

    /// Decodes column `name` of row group `rg` as `field`, rows of `filter` only.
    fn decode(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        field: ArrowField,
        filter: Option<Filter>,
    ) -> PolarsResult<Vec<Box<dyn Array>>> {
        self.decode_leaves(rg, name, field, filter, None)
    }

    /// [`LakeFile::decode`] of the leaf columns named `leaf` only (all if `None`);
    /// `field` must describe just those leaves.
    fn decode_leaves(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        field: ArrowField,
        filter: Option<Filter>,
        leaf: Option<&str>,
    ) -> PolarsResult<Vec<Box<dyn Array>>> {
        let mut chunks = self.chunks(rg, name)?;
        if let Some(leaf) = leaf {
            chunks.retain(|c| {
                c.descriptor()
                    .path_in_schema
                    .last()
                    .is_some_and(|p| p.as_str() == leaf)
            });
        }
        let file = std::fs::File::open(&self.path).map_err(|e| err(&self.path, e))?;
        let mut columns = Vec::with_capacity(chunks.len());
        let mut types = Vec::with_capacity(chunks.len());
        for meta in chunks {
            let range = meta.byte_range();
            let len = usize::try_from(range.end.saturating_sub(range.start))
                .map_err(|e| err(&self.path, e))?;
            let mut bytes = vec![0u8; len];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, range.start)
                .map_err(|e| err(&self.path, format!("column {name}: {e}")))?;
            let bytes = Buffer::from(bytes);
            let pages = PageReader::new(Cursor::new(bytes), meta, vec![], usize::MAX);
            columns.push(BasicDecompressor::new(pages, vec![]));
            types.push(&meta.descriptor().descriptor.primitive_type);
        }
        pq::column_iter_to_arrays(columns, types, field, filter)
            .map(|(arrays, _)| arrays)
            .map_err(|e| err(&self.path, format!("column {name}: {e}")))
    }

    /// `resources` of `rg` with its `arn` leaf only (the other leaves are not read).
    fn decode_arns(
        &self,
        rg: &RowGroupMetadata,
        filter: Option<Filter>,
    ) -> PolarsResult<Vec<Box<dyn Array>>> {
        let field = self.field("resources")?;
        let not_a_list = || err(&self.path, "resources is not a list of structs with an arn");
        let ArrowDataType::LargeList(entry) = field.dtype() else {
            return Err(not_a_list());
        };
        let ArrowDataType::Struct(fields) = entry.dtype() else {
            return Err(not_a_list());
        };
        let arn = fields
            .iter()
            .find(|f| f.name.as_str() == "arn")
            .ok_or_else(not_a_list)?;
        let narrowed = ArrowField::new(
            field.name.clone(),
            ArrowDataType::LargeList(Box::new(ArrowField::new(
                entry.name.clone(),
                ArrowDataType::Struct(vec![arn.clone()]),
                entry.is_nullable,
            ))),
            field.is_nullable,
        );
        self.decode_leaves(rg, "resources", narrowed, filter, Some("arn"))
    }

    /// The file's own type of `name` (text as string views, lists as large lists).
    fn field(&self, name: &str) -> PolarsResult<ArrowField> {
        self.schema
            .get(name)
            .cloned()
            .ok_or_else(|| err(&self.path, format!("no column {name}")))
    }

    /// Column `name` of `rg` as dictionary keys into string values, if every page of
    /// it is dictionary-encoded (else `None`: the caller decodes strings).
    fn decode_dictionary(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        filter: Option<Filter>,
    ) -> PolarsResult<Option<DictionaryArray<u32>>> {
        let chunks = self.chunks(rg, name)?;
        if chunks.len() != 1 || chunks[0].dictionary_page_offset().is_none() {
            return Ok(None);
        }
        if !matches!(self.field(name)?.dtype(), ArrowDataType::Utf8View) {
            return Err(err(&self.path, format!("column {name} is not text")));
        }
        let mut md = Metadata::new();
        md.insert(DTYPE_CATEGORICAL_NEW.into(), "".into());
        let field = ArrowField::new(
            name.into(),
            ArrowDataType::Dictionary(
                IntegerType::UInt32,
                Box::new(ArrowDataType::Utf8View),
                false,
            ),
            true,
        )
        .with_metadata(md);
        // A page the categorical decoder does not take (plain, after a dictionary
        // overflow) is an error of this call, not of the file.
        let Ok(arrays) = self.decode(rg, name, field, filter) else {
            return Ok(None);
        };
        // One dictionary per column chunk: several arrays would each carry it.
        let [array] = arrays.as_slice() else {
            return Ok(None);
        };
        let Some(d) = array.as_any().downcast_ref::<DictionaryArray<u32>>() else {
            return Ok(None);
        };
        if d.values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .is_none()
        {
            return Ok(None);
        }
        Ok(Some(d.clone()))
    }

    /// Column `name` of `rg` as [`Code`]s, written into `out` (one per kept row).
    fn decode_codes(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        filter: Option<Filter>,
        mapping: &CategoricalMapping,
        out: &mut [Code],
    ) -> PolarsResult<()> {
        let kept = out.len();
        let wrong_length = |got: usize| {
            err(
                &self.path,
                format!("column {name}: {got} rows decoded for {kept} kept"),
            )
        };
        if let Some(d) = self.decode_dictionary(rg, name, filter.clone())? {
            let values = d
                .values()
                .as_any()
                .downcast_ref::<Utf8ViewArray>()
                .ok_or_else(|| err(&self.path, format!("column {name} is not text")))?;
            let mut table: Vec<Code> = Vec::with_capacity(values.len());
            for v in values.iter() {
                table.push(match v {
                    Some(s) => mapping.insert_cat(s)? + 1,
                    None => 0,
                });
            }
            if d.len() != out.len() {
                return Err(wrong_length(d.len()));
            }
            let code = |k: &u32| table.get(*k as usize).copied().unwrap_or(0);
            let keys = d.keys();
            match keys.validity() {
                None => {
                    for (o, k) in out.iter_mut().zip(keys.values().iter()) {
                        *o = code(k);
                    }
                }
                Some(valid) => {
                    for ((o, k), ok) in out.iter_mut().zip(keys.values().iter()).zip(valid) {
                        *o = if ok { code(k) } else { 0 };
                    }
                }
            }
            return Ok(());
        }
        // Strings, converted one by one.
        let arrays = self.decode(rg, name, self.field(name)?, filter)?;
        let mut at = 0;
        for a in &arrays {
            let Some(s) = a.as_any().downcast_ref::<Utf8ViewArray>() else {
                return Err(err(&self.path, format!("column {name} is not text")));
            };
            for v in s.iter() {
                let slot = out.get_mut(at).ok_or_else(|| wrong_length(at + 1))?;
                *slot = match v {
                    Some(v) => mapping.insert_cat(v)? + 1,
                    None => 0,
                };
                at += 1;
            }
        }
        if at != out.len() {
            return Err(wrong_length(at));
        }
        Ok(())
    }

    /// Which rows of `rg` hold a kept event: `kind` in `kinds` (unless `all_kinds`),
    /// `account` and `role` equal to the spec's and `event_name` passing its test (each
    /// if given). `None`: every row.
    fn mask<'a>(&self, rg: &RowGroupMetadata, spec: &ScanSpec<'a>) -> PolarsResult<Option<Bitmap>> {
        let mut mask: Option<Bitmap> = None;
        let is = |allowed: Vec<&'a str>| move |v: &str| allowed.contains(&v);
        let mut conditions: Vec<(&str, ValueTest<'_>)> = Vec::new();
        if !spec.all_kinds {
            conditions.push(("kind", Box::new(is(spec.kinds.to_vec()))));
        }
        if let Some(a) = spec.account {
            conditions.push(("account", Box::new(is(vec![a]))));
        }
        if let Some(r) = spec.role {
            conditions.push(("role", Box::new(is(vec![r]))));
        }
        if let Some(e) = spec.engineer {
            conditions.push(("engineer", Box::new(is(vec![e]))));
        }
        let mut keeps = Vec::new();
        for (name, test) in conditions {
            keeps.push(self.matching(rg, name, &*test)?);
        }
        if let Some(test) = &spec.row_test {
            keeps.push(self.passing(rg, test)?);
        }
        for keep in keeps {
            mask = Some(match mask {
                Some(m) => &m & &keep,
                None => keep,
            });
        }
        Ok(mask.filter(|m| m.unset_bits() > 0))
    }

    /// Rows of `rg` that pass `test`: each row's values as ids (a dictionary's keys, or
    /// distinct values numbered), the test run once per combination of ids; a single
    /// column without a dictionary is tested row by row.
    fn passing(&self, rg: &RowGroupMetadata, test: &RowTest) -> PolarsResult<Bitmap> {
        if test.columns.len() > 4 {
            return Err(err(&self.path, "a row test reads at most four columns"));
        }
        // Per column: each row's id (0: null, else index + 1 into its values).
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(test.columns.len());
        let mut values: Vec<Vec<String>> = Vec::with_capacity(test.columns.len());
        for name in test.columns {
            let not_text = || err(&self.path, format!("column {name} is not text"));
            if let Some(d) = self.decode_dictionary(rg, name, None)? {
                let dict = d
                    .values()
                    .as_any()
                    .downcast_ref::<Utf8ViewArray>()
                    .ok_or_else(not_text)?;
                values.push(
                    dict.iter()
                        .map(|v| v.unwrap_or_default().to_string())
                        .collect(),
                );
                ids.push(d.keys().iter().map(|k| k.map_or(0, |k| k + 1)).collect());
                continue;
            }
            let arrays = self.decode(rg, name, self.field(name)?, None)?;
            let texts = arrays
                .iter()
                .map(|a| {
                    a.as_any()
                        .downcast_ref::<Utf8ViewArray>()
                        .ok_or_else(not_text)
                })
                .collect::<PolarsResult<Vec<_>>>()?;
            if test.columns.len() == 1 {
                // One column without a dictionary (its values mostly distinct, such as
                // ids): each row is tested as it is, numbering them would cost more.
                let mut bits = BitmapBuilder::with_capacity(rg.num_rows());
                for v in texts.iter().flat_map(|s| s.iter()) {
                    bits.push((test.keep)(&[v]));
                }
                return Ok(bits.freeze());
            }
            let mut seen: std::collections::HashMap<&str, u32> = Default::default();
            let mut column_ids = Vec::with_capacity(rg.num_rows());
            let mut column_values = Vec::new();
            for s in &texts {
                for v in s.iter() {
                    column_ids.push(match v {
                        None => 0,
                        Some(v) => *seen.entry(v).or_insert_with(|| {
                            column_values.push(v.to_string());
                            column_values.len() as u32
                        }),
                    });
                }
            }
            values.push(column_values);
            ids.push(column_ids);
        }
        let rows = ids.first().map_or(rg.num_rows(), Vec::len);
        if ids.iter().any(|c| c.len() != rows) {
            return Err(err(&self.path, "a row test's columns differ in length"));
        }
        let mut memo: std::collections::HashMap<u128, bool> = Default::default();
        let mut row_values: Vec<Option<&str>> = vec![None; ids.len()];
        let mut bits = BitmapBuilder::with_capacity(rows);
        for i in 0..rows {
            let mut key = 0u128;
            for c in &ids {
                key = (key << 32) | u128::from(c.get(i).copied().unwrap_or(0));
            }
            let keep = match memo.get(&key) {
                Some(k) => *k,
                None => {
                    for (slot, (c, vals)) in row_values.iter_mut().zip(ids.iter().zip(&values)) {
                        let id = c.get(i).copied().unwrap_or(0);
                        *slot = id
                            .checked_sub(1)
                            .and_then(|j| vals.get(j as usize))
                            .map(String::as_str);
                    }
                    let k = (test.keep)(&row_values);
                    memo.insert(key, k);
                    k
                }
            };
            bits.push(keep);
        }
        Ok(bits.freeze())
    }

    /// Rows of `rg` whose `name` passes `test` (nulls never do).
    fn matching(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        test: &dyn Fn(&str) -> bool,
    ) -> PolarsResult<Bitmap> {
        let keep = |v: Option<&str>| v.is_some_and(test);
        if let Some(d) = self.decode_dictionary(rg, name, None)? {
            let values = d
                .values()
                .as_any()
                .downcast_ref::<Utf8ViewArray>()
                .ok_or_else(|| err(&self.path, format!("column {name} is not text")))?;
            let ok: Vec<bool> = values.iter().map(keep).collect();
            let bits: Bitmap = d
                .keys()
                .iter()
                .map(|k| k.is_some_and(|k| ok.get(*k as usize).copied().unwrap_or(false)))
                .collect();
            return Ok(bits);
        }
        let arrays = self.decode(rg, name, self.field(name)?, None)?;
        let mut bits = BitmapBuilder::new();
        for a in &arrays {
            let Some(s) = a.as_any().downcast_ref::<Utf8ViewArray>() else {
                return Err(err(&self.path, format!("column {name} is not text")));
            };
            for v in s.iter() {
                bits.push(keep(v));
            }
        }
        Ok(bits.freeze())
    }
}

/// A test on one column's (non-null) values.
type ValueTest<'a> = Box<dyn Fn(&str) -> bool + 'a>;

/// A row group with kept rows, and which of its rows those are.
struct Group<'a> {
    file: &'a LakeFile,
    rg: &'a RowGroupMetadata,
    filter: Option<Filter>,
    rows: usize,
}

/// What the first phase decodes of one row group: the plain columns, and the code of
/// the first resource ARN of each row (if the spec derives `resource`).
struct FirstPhase<'a> {
    group: Group<'a>,
    plain: Vec<Vec<Box<dyn Array>>>,
    first_arn: Vec<Code>,
}

/// The kept rows of every lake file, `spec.names` in order (then `resource`), in the
/// order `arrange` gives: `arrange` sees the plain (not
/// categorical) columns of the kept rows in lake order and returns, for each row of
/// the result, the lake-order row it takes (`None`: lake order).
pub fn scan_arranged<F>(files: &[PathBuf], spec: &ScanSpec, arrange: F) -> PolarsResult<DataFrame>
where
    F: FnOnce(&DataFrame) -> PolarsResult<Option<Vec<IdxSize>>>,
{
    let cat_dtype = DataType::from_categories(Categories::global());
    let DataType::Categorical(_, mapping) = &cat_dtype else {
        return Err(PolarsError::ComputeError(
            "global categories are not categorical".into(),
        ));
    };
    let lake_files: Vec<LakeFile> = files
        .par_iter()
        .map(|f| LakeFile::open(f))
        .collect::<PolarsResult<_>>()?;
    let plain_names: Vec<&str> = spec
        .names
        .iter()
        .copied()
        .filter(|n| !spec.categorical.contains(n))
        .collect();
    let first = first_phase(&lake_files, spec, &plain_names, mapping)?;
    let rows: Vec<usize> = first.iter().map(|f| f.group.rows).collect();
    let n: usize = rows.iter().sum();
    if n == 0 {
        // polars' scan knows the types of an empty result.
        return Err(PolarsError::NoData("no rows in the lake".into()));
    }

    // The plain columns, and the order of the result.
    let plain_columns = plain_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let arrays: Vec<ArrayRef> = first
                .iter()
                .flat_map(|f| f.plain.get(c).into_iter().flatten().cloned())
                .collect();
            let name: PlSmallStr = (*name).into();
            let s = Series::try_from((name, arrays))?;
            Ok(s.rechunk().into_column())
        })
        .collect::<PolarsResult<Vec<Column>>>()?;
    let mut plain = DataFrame::new(n, plain_columns)?;
    let order = arrange(&plain)?
        .map(|o| IdxCa::from_vec("order".into(), o))
        .filter(|o| !is_identity(o));
    if let Some(o) = &order {
        if o.len() != n {
            return Err(PolarsError::ShapeMismatch(
                format!("an order of {} rows for {n} rows", o.len()).into(),
            ));
        }
        plain = plain.take(o)?;
    }
    let order: Option<&[IdxSize]> = order.as_ref().and_then(|o| o.cont_slice().ok());

    // The categorical columns, one at a time.
    let groups: Vec<&Group> = first.iter().map(|f| &f.group).collect();
    let mut scratch: Vec<Code> = Vec::new();
    let mut coded: Vec<(&str, Vec<Code>)> = Vec::new();
    for name in spec.names.iter().filter(|n| spec.categorical.contains(n)) {
        let codes = build_codes(n, &rows, order, &mut scratch, |slices| {
            groups
                .par_iter()
                .zip(slices.into_par_iter())
                .try_for_each(|(g, out)| {
                    g.file
                        .decode_codes(g.rg, name, g.filter.clone(), mapping, out)
                })
        })?;
        coded.push((name, codes));
    }
    if spec.resource {
        let arns = build_codes(n, &rows, order, &mut scratch, |slices| {
            first
                .par_iter()
                .zip(slices.into_par_iter())
                .try_for_each(|(f, out)| {
                    if f.first_arn.len() != out.len() {
                        return Err(err(&f.group.file.path, "resources: rows differ"));
                    }
                    out.copy_from_slice(&f.first_arn);
                    Ok(())
                })
        })?;
        drop(scratch);
        let find = |name: &str| -> PolarsResult<&[Code]> {
            coded
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c.as_slice())
                .ok_or_else(|| PolarsError::ColumnNotFound(format!("{name} (for resource)").into()))
        };
        let resource = resource_codes(
            [
                find("target_instance")?,
                find("bucket")?,
                find("object_key")?,
                find("db")?,
                &arns,
            ],
            mapping,
        )?;
        coded.push(("resource", resource));
    }

    let mut columns: Vec<Column> = Vec::with_capacity(spec.names.len() + 1);
    let mut plain_columns = plain.into_columns().into_iter();
    let mut coded = coded.into_iter();
    for name in spec.names {
        let column = if spec.categorical.contains(name) {
            coded.next().map(|(n, c)| categorical(n, c, &cat_dtype))
        } else {
            plain_columns.next().map(Ok)
        };
        columns.push(column.ok_or_else(|| {
            PolarsError::ComputeError(format!("column {name} was not built").into())
        })??);
    }
    if let Some((n, c)) = coded.next() {
        columns.push(categorical(n, c, &cat_dtype)?);
    }
    DataFrame::new(n, columns)
}

/// The first phase over every row group of `files`, in order: the kept rows, their
/// plain columns and the code of their first resource ARN (row groups without kept
/// rows are left out).
fn first_phase<'a>(
    files: &'a [LakeFile],
    spec: &ScanSpec,
    plain_names: &[&str],
    mapping: &CategoricalMapping,
) -> PolarsResult<Vec<FirstPhase<'a>>> {
    let tasks: Vec<(&LakeFile, &RowGroupMetadata)> = files
        .iter()
        .flat_map(|f| f.meta.row_groups.iter().map(move |rg| (f, rg)))
        .collect();
    let phases: Vec<Option<FirstPhase>> = tasks
        .par_iter()
        .map(|&(file, rg)| {
            if let Some(range) = &spec.within
                && !file.meets(rg, range)
            {
                return Ok(None);
            }
            let mask = file.mask(rg, spec)?;
            let rows = mask.as_ref().map_or(rg.num_rows(), |m| m.set_bits());
            if rows == 0 {
                return Ok(None);
            }
            let filter = mask.map(Filter::new_masked);
            let plain = plain_names
                .iter()
                .map(|name| file.decode(rg, name, file.field(name)?, filter.clone()))
                .collect::<PolarsResult<Vec<_>>>()?;
            let mut first_arn = Vec::new();
            if spec.resource {
                let decoded;
                let resources: &[Box<dyn Array>] =
                    match plain_names.iter().position(|n| *n == "resources") {
                        Some(i) => plain.get(i).map_or(&[], Vec::as_slice),
                        None => {
                            decoded = file.decode_arns(rg, filter.clone())?;
                            &decoded
                        }
                    };
                first_arns(resources, mapping, &mut first_arn)?;
                if first_arn.len() != rows {
                    return Err(err(&file.path, "resources: rows differ from the mask"));
                }
            }
            Ok(Some(FirstPhase {
                group: Group {
                    file,
                    rg,
                    filter,
                    rows,
                },
                plain,
                first_arn,
            }))
        })
        .collect::<PolarsResult<_>>()?;
    Ok(phases.into_iter().flatten().collect())
}

/// Whether `order` takes every row where it is.
fn is_identity(order: &IdxCa) -> bool {
    order
        .cont_slice()
        .is_ok_and(|o| o.iter().enumerate().all(|(i, v)| *v as usize == i))
}

/// One column of [`Code`]s for `n` rows: `fill` writes each row group's codes into its
/// own slice (`rows[i]` long, in lake order) of a buffer, which is the column itself
/// when there is no `order`, else `scratch`, gathered into the column in `order`.
fn build_codes<F>(
    n: usize,
    rows: &[usize],
    order: Option<&[IdxSize]>,
    scratch: &mut Vec<Code>,
    fill: F,
) -> PolarsResult<Vec<Code>>
where
    F: FnOnce(Vec<&mut [Code]>) -> PolarsResult<()>,
{
    let split = |buf: &mut [Code]| -> PolarsResult<()> {
        let mut rest = buf;
        let mut slices = Vec::with_capacity(rows.len());
        for &r in rows {
            let (slice, tail) = std::mem::take(&mut rest)
                .split_at_mut_checked(r)
                .ok_or_else(|| PolarsError::ShapeMismatch("row groups exceed the rows".into()))?;
            slices.push(slice);
            rest = tail;
        }
        fill(slices)
    };
    let Some(order) = order else {
        let mut column = vec![0; n];
        split(&mut column)?;
        return Ok(column);
    };
    if scratch.len() != n {
        *scratch = vec![0; n];
    }
    split(scratch)?;
    let mut column = vec![0; n];
    let source = scratch.as_slice();
    const CHUNK: usize = 1 << 16;
    column
        .par_chunks_mut(CHUNK)
        .zip(order.par_chunks(CHUNK))
        .for_each(|(out, idx)| {
            for (o, i) in out.iter_mut().zip(idx) {
                *o = source.get(*i as usize).copied().unwrap_or(0);
            }
        });
    Ok(column)
}

/// A column of [`Code`]s as a categorical of the global categories: in one parallel
/// pass, each code becomes the category's own and its validity bit is packed.
fn categorical(name: &str, mut codes: Vec<Code>, cat_dtype: &DataType) -> PolarsResult<Column> {
    // A multiple of 8, so that every chunk's bits start on a byte.
    const CHUNK: usize = 1 << 16;
    let n = codes.len();
    let mut bits = vec![0u8; n.div_ceil(8)];
    let nulls: usize = codes
        .par_chunks_mut(CHUNK)
        .zip(bits.par_chunks_mut(CHUNK / 8))
        .map(|(codes, bits)| {
            let mut nulls = 0;
            for (eight, byte) in codes.chunks_mut(8).zip(bits.iter_mut()) {
                for (i, c) in eight.iter_mut().enumerate() {
                    if *c == 0 {
                        nulls += 1;
                    } else {
                        *byte |= 1 << i;
                        *c -= 1;
                    }
                }
            }
            nulls
        })
        .sum();
    let validity = (nulls > 0).then(|| Bitmap::from_u8_vec(bits, n));
    let codes = UInt32Chunked::from_vec_validity(name.into(), codes, validity);
    // SAFETY: every code came from `insert_cat` on the dtype's own mapping (or is the
    // 0 of a null).
    let cats =
        unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(codes, cat_dtype.clone()) };
    Ok(cats.into_series().into_column())
}

/// Appends the [`Code`] of the first ARN of each row of `resources` (a list of
/// structs with an `arn`) to `out`: null for a null or empty list or a missing ARN.
/// Equal views of one array are equal strings (the decoder points every copy of a
/// dictionary entry at the same bytes), so each distinct view is looked up once.
fn first_arns(
    resources: &[Box<dyn Array>],
    mapping: &CategoricalMapping,
    out: &mut Vec<Code>,
) -> PolarsResult<()> {
    let mut memo: std::collections::HashMap<u128, Code, foldhash::fast::FixedState> =
        Default::default();
    for a in resources {
        let Some(list) = a
            .as_any()
            .downcast_ref::<polars_arrow::array::ListArray<i64>>()
        else {
            return Err(PolarsError::SchemaMismatch(
                "resources is not a list".into(),
            ));
        };
        let Some(entries) = list
            .values()
            .as_any()
            .downcast_ref::<polars_arrow::array::StructArray>()
        else {
            return Err(PolarsError::SchemaMismatch(
                "resources holds no structs".into(),
            ));
        };
        let arn = entries
            .fields()
            .iter()
            .position(|f| f.name.as_str() == "arn")
            .and_then(|i| entries.values().get(i))
            .and_then(|a| a.as_any().downcast_ref::<Utf8ViewArray>())
            .ok_or_else(|| PolarsError::SchemaMismatch("resources holds no arn".into()))?;
        let offsets = list.offsets();
        for row in 0..list.len() {
            let (start, end) = offsets.start_end(row);
            let present = list.validity().is_none_or(|v| v.get_bit(row))
                && end > start
                && start < arn.len()
                && entries.validity().is_none_or(|v| v.get_bit(start))
                && arn.is_valid(start);
            if !present {
                out.push(0);
                continue;
            }
            let view = arn.views()[start].as_u128();
            let code = match memo.get(&view) {
                Some(c) => *c,
                None => {
                    // SAFETY: `start < arn.len()` was checked above.
                    let c = mapping.insert_cat(unsafe { arn.value_unchecked(start) })? + 1;
                    memo.insert(view, c);
                    c
                }
            };
            out.push(code);
        }
    }
    Ok(())
}

/// The view's `resource` of each row (`view::resource` is the same rule as a polars
/// expression): the target instance, else `bucket/object_key`, else the bucket, else
/// the db, else the first resource ARN; null if none. `columns` are these five as
/// [`Code`]s, in that order. Only `bucket/object_key` pairs are looked up as strings,
/// each distinct pair once per stretch of rows.
fn resource_codes(columns: [&[Code]; 5], mapping: &CategoricalMapping) -> PolarsResult<Vec<Code>> {
    let [instance, bucket, key, db, arn] = columns;
    let n = instance.len();
    if [bucket.len(), key.len(), db.len(), arn.len()] != [n; 4] {
        return Err(PolarsError::ShapeMismatch(
            "the resource columns differ in length".into(),
        ));
    }
    const CHUNK: usize = 1 << 16;
    let mut out: Vec<Code> = vec![0; n];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .try_for_each(|(c, out)| -> PolarsResult<()> {
            let mut pairs: std::collections::HashMap<
                (Code, Code),
                Code,
                foldhash::fast::FixedState,
            > = Default::default();
            let base = c * CHUNK;
            for (j, o) in out.iter_mut().enumerate() {
                let i = base + j;
                let at = |col: &[Code]| col.get(i).copied().unwrap_or(0);
                let (instance, bucket, key) = (at(instance), at(bucket), at(key));
                *o = if instance != 0 {
                    instance
                } else if bucket != 0 && key != 0 {
                    match pairs.get(&(bucket, key)) {
                        Some(c) => *c,
                        None => {
                            let text = format!(
                                "{}/{}",
                                mapping.cat_to_str(bucket - 1).unwrap_or_default(),
                                mapping.cat_to_str(key - 1).unwrap_or_default()
                            );
                            let c = mapping.insert_cat(&text)? + 1;
                            pairs.insert((bucket, key), c);
                            c
                        }
                    }
                } else if bucket != 0 {
                    bucket
                } else if at(db) != 0 {
                    at(db)
                } else {
                    at(arn)
                };
            }
            Ok(())
        })?;
    Ok(out)
}

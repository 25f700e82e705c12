//! The view's scan of the lake: Parquet column chunks decoded straight into the frame
//! the view holds, text columns as categoricals without ever building their strings.
//!
//! Every text column of the lake is dictionary-encoded by the writer (a row group of
//! 128 k rows has a few hundred distinct accounts, roles, actions, IPs or sessions), so
//! a row group's column is a small dictionary and one key per row. polars' own scan
//! turns each key back into a string view, and the view then turns every view into a
//! category again. Here the keys are decoded as they are (polars-parquet's categorical
//! decoder), each dictionary entry is looked up in the global categories once, and the
//! keys are mapped through that table. Rows that are not CE events, or not of the
//! requested account or role, are masked out while the other columns are decoded.
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
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
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
/// `account` and `role` are equal to these.
pub struct ScanSpec<'a> {
    pub names: &'a [&'a str],
    pub categorical: &'a [&'a str],
    pub kinds: &'a [&'a str],
    pub account: Option<&'a str>,
    pub role: Option<&'a str>,
    /// Adds the view's `resource` column (a categorical; see [`resource_codes`]),
    /// which needs `target_instance`, `bucket`, `object_key`, `db` (categorical) and
    /// `resources` among `names`.
    pub resource: bool,
    /// `resources` is read only for `resource`: only its `arn` leaf is decoded (the
    /// column comes out as a list of structs holding `arn` alone).
    pub arn_only: bool,
}

/// One decoded column of one row group.
enum Part {
    /// Global category codes (and which rows are null).
    Codes(Vec<u32>, Option<Bitmap>),
    /// Any other column, as polars-parquet decoded it.
    Arrays(Vec<Box<dyn Array>>),
}

/// One lake file: its footer, read once; each column chunk is read when it is decoded
/// (so a scan holds the chunks being decoded, never a whole file, and never reads the
/// columns it does not need).
struct LakeFile {
    path: PathBuf,
    file: std::fs::File,
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
            file,
            meta,
            schema,
        })
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
        let mut columns = Vec::with_capacity(chunks.len());
        let mut types = Vec::with_capacity(chunks.len());
        for meta in chunks {
            let range = meta.byte_range();
            let len = usize::try_from(range.end.saturating_sub(range.start))
                .map_err(|e| err(&self.path, e))?;
            let mut bytes = vec![0u8; len];
            std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut bytes, range.start)
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

    /// Column `name` of `rg` as dictionary keys and values, if every page of it is
    /// dictionary-encoded (else `None`: the caller decodes strings).
    fn decode_dictionary(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        filter: Option<Filter>,
    ) -> PolarsResult<Option<(PrimitiveArray<u32>, Utf8ViewArray)>> {
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
        let mut keys: Vec<u32> = Vec::new();
        let mut validity = BitmapBuilder::new();
        let mut values: Option<Utf8ViewArray> = None;
        let mut any_null = false;
        for a in arrays {
            let Some(d) = a.as_any().downcast_ref::<DictionaryArray<u32>>() else {
                return Ok(None);
            };
            let Some(v) = d.values().as_any().downcast_ref::<Utf8ViewArray>() else {
                return Ok(None);
            };
            if values.is_some() {
                // One dictionary per column chunk: several arrays would each carry it.
                return Ok(None);
            }
            values = Some(v.clone());
            keys.extend_from_slice(d.keys().values());
            match d.keys().validity() {
                Some(b) => {
                    any_null |= b.unset_bits() > 0;
                    validity.extend_from_bitmap(b);
                }
                None => validity.extend_constant(d.len(), true),
            }
        }
        let Some(values) = values else {
            return Ok(None);
        };
        let validity = any_null.then(|| validity.freeze());
        Ok(Some((
            PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity),
            values,
        )))
    }

    /// Column `name` of `rg` as global category codes.
    fn decode_codes(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        filter: Option<Filter>,
        mapping: &CategoricalMapping,
    ) -> PolarsResult<Part> {
        if let Some((keys, values)) = self.decode_dictionary(rg, name, filter.clone())? {
            let mut table = Vec::with_capacity(values.len());
            for v in values.iter() {
                table.push(match v {
                    Some(s) => mapping.insert_cat(s)?,
                    None => 0,
                });
            }
            let codes = keys
                .values()
                .iter()
                .map(|k| table.get(*k as usize).copied().unwrap_or(0))
                .collect();
            return Ok(Part::Codes(codes, keys.validity().cloned()));
        }
        // Strings, converted one by one.
        let arrays = self.decode(rg, name, self.field(name)?, filter)?;
        let mut codes = Vec::new();
        let mut validity = BitmapBuilder::new();
        let mut any_null = false;
        for a in &arrays {
            let Some(s) = a.as_any().downcast_ref::<Utf8ViewArray>() else {
                return Err(err(&self.path, format!("column {name} is not text")));
            };
            for v in s.iter() {
                match v {
                    Some(v) => {
                        codes.push(mapping.insert_cat(v)?);
                        validity.push(true);
                    }
                    None => {
                        codes.push(0);
                        validity.push(false);
                        any_null = true;
                    }
                }
            }
        }
        Ok(Part::Codes(codes, any_null.then(|| validity.freeze())))
    }

    /// Which rows of `rg` hold a kept event: `kind` in `kinds`, `account` and `role`
    /// equal to the spec's (if given). `None`: every row.
    fn mask(&self, rg: &RowGroupMetadata, spec: &ScanSpec) -> PolarsResult<Option<Bitmap>> {
        let mut mask: Option<Bitmap> = None;
        let conditions: [(&str, Vec<&str>); 3] = [
            ("kind", spec.kinds.to_vec()),
            ("account", spec.account.into_iter().collect()),
            ("role", spec.role.into_iter().collect()),
        ];
        for (name, allowed) in conditions {
            if name != "kind" && allowed.is_empty() {
                continue;
            }
            let keep = self.matching(rg, name, &allowed)?;
            mask = Some(match mask {
                Some(m) => &m & &keep,
                None => keep,
            });
        }
        Ok(mask.filter(|m| m.unset_bits() > 0))
    }

    /// Rows of `rg` whose `name` is one of `allowed` (nulls never are).
    fn matching(
        &self,
        rg: &RowGroupMetadata,
        name: &str,
        allowed: &[&str],
    ) -> PolarsResult<Bitmap> {
        let keep = |v: Option<&str>| v.is_some_and(|v| allowed.contains(&v));
        if let Some((keys, values)) = self.decode_dictionary(rg, name, None)? {
            let ok: Vec<bool> = values.iter().map(keep).collect();
            let bits: Bitmap = keys
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

/// Lake files open at once during a scan.
const FILES_AT_ONCE: usize = 64;

/// The decoded parts of each row group of `files`, in order: one task per (file, row
/// group), each decoding its columns in turn.
fn scan_files(
    files: &[PathBuf],
    spec: &ScanSpec,
    mapping: &CategoricalMapping,
) -> PolarsResult<Vec<Vec<Part>>> {
    let lake_files: Vec<LakeFile> = files
        .par_iter()
        .map(|f| LakeFile::open(f))
        .collect::<PolarsResult<_>>()?;
    let tasks: Vec<(usize, usize)> = lake_files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| (0..f.meta.row_groups.len()).map(move |r| (i, r)))
        .collect();
    tasks
        .par_iter()
        .map(|&(i, r)| {
            let file = &lake_files[i];
            let rg = &file.meta.row_groups[r];
            let mask = file.mask(rg, spec)?;
            if mask.as_ref().is_some_and(|m| m.set_bits() == 0) {
                return Ok(Vec::new());
            }
            let filter = mask.map(Filter::new_masked);
            let mut parts = spec
                .names
                .iter()
                .map(|name| {
                    if spec.categorical.contains(name) {
                        file.decode_codes(rg, name, filter.clone(), mapping)
                    } else if spec.arn_only && *name == "resources" {
                        Ok(Part::Arrays(file.decode_arns(rg, filter.clone())?))
                    } else {
                        let field = file.field(name)?;
                        Ok(Part::Arrays(file.decode(
                            rg,
                            name,
                            field,
                            filter.clone(),
                        )?))
                    }
                })
                .collect::<PolarsResult<Vec<Part>>>()?;
            if spec.resource {
                let codes = resource_codes(&parts, spec.names, mapping)?;
                parts.push(codes);
            }
            Ok(parts)
        })
        .collect()
}

/// The kept rows of every lake file, `spec.names` in order.
pub fn scan(files: &[PathBuf], spec: &ScanSpec) -> PolarsResult<DataFrame> {
    let cat_dtype = DataType::from_categories(Categories::global());
    let DataType::Categorical(_, mapping) = &cat_dtype else {
        return Err(PolarsError::ComputeError(
            "global categories are not categorical".into(),
        ));
    };
    // Files are taken a window at a time, so a lake of thousands of files never has
    // more than `FILES_AT_ONCE` of them open.
    let mut parts: Vec<Vec<Part>> = Vec::new();
    for window in files.chunks(FILES_AT_ONCE) {
        parts.extend(scan_files(window, spec, mapping)?);
    }
    let mut names: Vec<&str> = spec.names.to_vec();
    if spec.resource {
        names.push("resource");
    }
    let columns: Vec<Column> = names
        .iter()
        .enumerate()
        .map(|(c, name)| assemble(name, &parts, c, &cat_dtype))
        .collect::<PolarsResult<_>>()?;
    DataFrame::new_infer_height(columns)
}

/// Column `c` of every row group, joined into one column.
fn assemble(
    name: &str,
    parts: &[Vec<Part>],
    c: usize,
    cat_dtype: &DataType,
) -> PolarsResult<Column> {
    let name: PlSmallStr = name.into();
    let categorical = parts
        .iter()
        .find_map(|p| p.get(c))
        .is_some_and(|p| matches!(p, Part::Codes(..)));
    if categorical {
        let len: usize = parts
            .iter()
            .filter_map(|p| match p.get(c) {
                Some(Part::Codes(codes, _)) => Some(codes.len()),
                _ => None,
            })
            .sum();
        let mut codes = Vec::with_capacity(len);
        let mut validity = BitmapBuilder::with_capacity(len);
        let mut any_null = false;
        for p in parts {
            if let Some(Part::Codes(part, v)) = p.get(c) {
                codes.extend_from_slice(part);
                match v {
                    Some(v) => {
                        any_null |= v.unset_bits() > 0;
                        validity.extend_from_bitmap(v);
                    }
                    None => validity.extend_constant(part.len(), true),
                }
            }
        }
        let validity = any_null.then(|| validity.freeze());
        let codes = UInt32Chunked::from_vec_validity(name, codes, validity);
        // SAFETY: every code came from `insert_cat` on the dtype's own mapping.
        let cats = unsafe {
            Categorical32Chunked::from_cats_and_dtype_unchecked(codes, cat_dtype.clone())
        };
        return Ok(cats.into_series().into_column());
    }
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for p in parts {
        if let Some(Part::Arrays(a)) = p.get(c) {
            arrays.extend(a.iter().cloned());
        }
    }
    if arrays.is_empty() {
        return Err(PolarsError::ComputeError(
            format!("no rows for column {name}").into(),
        ));
    }
    let s = Series::try_from((name, arrays))?;
    Ok(s.rechunk().into_column())
}

/// The view's `resource` of each row of a row group (`view::resource` is the same rule
/// as a polars expression): the target instance, else `bucket/object_key`, else the
/// bucket, else the db, else the ARN of the first entry of `resources`; null if none.
/// Computed on category codes: only `bucket/object_key` pairs and ARNs are looked up
/// as strings, each distinct one once.
fn resource_codes(
    parts: &[Part],
    names: &[&str],
    mapping: &CategoricalMapping,
) -> PolarsResult<Part> {
    let find = |name: &str| -> PolarsResult<&Part> {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| parts.get(i))
            .ok_or_else(|| PolarsError::ColumnNotFound(format!("{name} (for resource)").into()))
    };
    let codes = |name: &str| -> PolarsResult<(&[u32], Option<&Bitmap>)> {
        match find(name)? {
            Part::Codes(c, v) => Ok((c.as_slice(), v.as_ref())),
            Part::Arrays(_) => Err(PolarsError::SchemaMismatch(
                format!("{name} is not categorical").into(),
            )),
        }
    };
    let valid = |v: Option<&Bitmap>, i: usize| v.is_none_or(|v| v.get_bit(i));
    let (instance, instance_ok) = codes("target_instance")?;
    let (bucket, bucket_ok) = codes("bucket")?;
    let (key, key_ok) = codes("object_key")?;
    let (db, db_ok) = codes("db")?;
    let Part::Arrays(resources) = find("resources")? else {
        return Err(PolarsError::SchemaMismatch(
            "resources is not a list".into(),
        ));
    };
    // The category of the first ARN of each row's list (None: null, empty or no ARN).
    // Equal views of one array are equal strings (the decoder points every copy of a
    // dictionary entry at the same bytes), so each distinct view is looked up once.
    let mut first_arn: Vec<Option<u32>> = Vec::with_capacity(instance.len());
    let mut memo: std::collections::HashMap<u128, u32, foldhash::fast::FixedState> =
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
                first_arn.push(None);
                continue;
            }
            let view = arn.views()[start].as_u128();
            let code = match memo.get(&view) {
                Some(c) => *c,
                None => {
                    // SAFETY: `start < arn.len()` was checked above.
                    let c = mapping.insert_cat(unsafe { arn.value_unchecked(start) })?;
                    memo.insert(view, c);
                    c
                }
            };
            first_arn.push(Some(code));
        }
    }
    let n = instance.len();
    if [first_arn.len(), bucket.len(), key.len(), db.len()] != [n; 4] {
        return Err(PolarsError::ShapeMismatch(
            "the resource columns differ in length".into(),
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut out_ok = BitmapBuilder::with_capacity(n);
    let mut pairs: std::collections::HashMap<(u32, u32), u32, foldhash::fast::FixedState> =
        Default::default();
    for i in 0..n {
        let code = if valid(instance_ok, i) {
            Some(instance[i])
        } else if valid(bucket_ok, i) && valid(key_ok, i) {
            let pair = (bucket[i], key[i]);
            Some(match pairs.get(&pair) {
                Some(c) => *c,
                None => {
                    let text = format!(
                        "{}/{}",
                        mapping.cat_to_str(pair.0).unwrap_or_default(),
                        mapping.cat_to_str(pair.1).unwrap_or_default()
                    );
                    let c = mapping.insert_cat(&text)?;
                    pairs.insert(pair, c);
                    c
                }
            })
        } else if valid(bucket_ok, i) {
            Some(bucket[i])
        } else if valid(db_ok, i) {
            Some(db[i])
        } else {
            first_arn[i]
        };
        out.push(code.unwrap_or(0));
        out_ok.push(code.is_some());
    }
    let validity = out_ok.freeze();
    let validity = (validity.unset_bits() > 0).then_some(validity);
    Ok(Part::Codes(out, validity))
}

//! Parquet encoding of lake files: zstd, page statistics, rows sorted by time.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{SortColumn, concat, lexsort_to_indices, take};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use rayon::prelude::*;

use crate::error::LakeError;
use crate::lake::schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, schema};

/// Rows per row group: large enough for good compression, small enough for pruning.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Text columns with a different value in (nearly) every row, written without a
/// dictionary: one would only fill up and fall back to plain pages part-way through
/// each row group, and a reader then decodes two encodings instead of one (the
/// dashboard's scan is ~45 ms faster on two million events, and the
/// files are no larger).
const UNIQUE_COLUMNS: [&str; 2] = ["event_id", "request_id"];

/// What a written lake file is, as its ledger segment records it: rows, bytes, and the
/// xxh3-64 of its bytes (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub rows: u64,
    pub size: u64,
    pub xxh3: u64,
}

/// A file written through a running xxh3 and byte count, so that sealing a file costs
/// no second read.
struct Sealing {
    file: File,
    size: u64,
    hash: Box<xxhash_rust::xxh3::Xxh3>,
}

impl Sealing {
    fn new(file: File) -> Self {
        Self {
            file,
            size: 0,
            hash: Box::default(),
        }
    }

    /// Syncs the file to disk; its seal with `rows`.
    fn seal(self, rows: u64, path: &Path) -> Result<Seal, LakeError> {
        self.file.sync_all().map_err(LakeError::io(path))?;
        Ok(Seal {
            rows,
            size: self.size,
            xxh3: self.hash.digest(),
        })
    }
}

impl std::io::Write for Sealing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The xxh3-64 of a file's bytes, read in blocks (`lake check --deep`).
pub fn xxh3_of(path: &Path) -> Result<(u64, u64), LakeError> {
    use std::io::Read;
    let mut file = File::open(path).map_err(LakeError::io(path))?;
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(LakeError::io(path))?;
        if n == 0 {
            return Ok((size, hash.digest()));
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
}

fn parquet_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> LakeError + '_ {
    move |e| LakeError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Concatenates `batches` and sorts the rows by (event_time, event_id). The order is
/// computed once; each column is then concatenated and gathered on its own (in
/// parallel: a batch has ~50 columns).
pub fn sort_batches(batches: &[RecordBatch]) -> Result<RecordBatch, LakeError> {
    let arrow_err = |e: arrow::error::ArrowError| LakeError::Arrow(e.to_string());
    let schema = schema();
    let column = |i: usize| -> Result<ArrayRef, LakeError> {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        concat(&parts).map_err(arrow_err)
    };
    let keys = [column(0)?, column(1)?];
    let sort_columns: Vec<SortColumn> = keys
        .iter()
        .map(|values| SortColumn {
            values: values.clone(),
            options: None,
        })
        .collect();
    let idx = lexsort_to_indices(&sort_columns, None).map_err(arrow_err)?;
    let columns = (0..schema.fields().len())
        .into_par_iter()
        .map(|i| {
            let values = match keys.get(i) {
                Some(k) => k.clone(),
                None => column(i)?,
            };
            take(values.as_ref(), &idx, None).map_err(arrow_err)
        })
        .collect::<Result<Vec<ArrayRef>, LakeError>>()?;
    RecordBatch::try_new(schema, columns).map_err(arrow_err)
}

fn properties(path: &Path) -> Result<WriterProperties, LakeError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(parquet_err(path))?,
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(true)
        .set_created_by(format!("cetrail {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_VERSION_KEY.to_string(),
            SCHEMA_VERSION.to_string(),
        )]));
    for name in UNIQUE_COLUMNS {
        builder = builder.set_column_dictionary_enabled(name.into(), false);
    }
    Ok(builder.build())
}

/// A lake file being written batch by batch (compaction streams into it).
pub struct LakeFileWriter {
    path: std::path::PathBuf,
    inner: ArrowWriter<Sealing>,
    rows: u64,
}

impl LakeFileWriter {
    pub fn create(path: &Path) -> Result<Self, LakeError> {
        let file = Sealing::new(File::create(path).map_err(LakeError::io(path))?);
        let inner = ArrowWriter::try_new(file, schema(), Some(properties(path)?))
            .map_err(parquet_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            rows: 0,
        })
    }

    /// Appends rows (the caller keeps them in lake order).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        self.rows += batch.num_rows() as u64;
        self.inner.write(batch).map_err(parquet_err(&self.path))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far plus the encoded size of the open row group.
    pub fn size(&self) -> u64 {
        (self.inner.bytes_written() + self.inner.in_progress_size()) as u64
    }

    /// Closes the file and syncs it to disk; returns its seal.
    pub fn finish(self) -> Result<Seal, LakeError> {
        let path = self.path;
        let file = self.inner.into_inner().map_err(parquet_err(&path))?;
        file.seal(self.rows, &path)
    }
}

/// Writes one sorted batch to `path` and syncs it to disk. The columns of each row
/// group are encoded and compressed in parallel (the file is written at a commit,
/// while parsing waits for nothing else: its time is the commit's). Returns its seal.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<Seal, LakeError> {
    let err = parquet_err(path);
    let file = Sealing::new(File::create(path).map_err(LakeError::io(path))?);
    let (mut writer, factory) = ArrowWriter::try_new(file, schema(), Some(properties(path)?))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(&err)?;
    let fields = schema();
    let mut offset = 0usize;
    let mut group = 0usize;
    while offset < batch.num_rows() {
        let len = ROW_GROUP_ROWS.min(batch.num_rows() - offset);
        let part = batch.slice(offset, len);
        let mut leaves = Vec::new();
        for (field, column) in fields.fields().iter().zip(part.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(&err)?);
        }
        let writers = factory.create_column_writers(group).map_err(&err)?;
        let chunks = writers
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut w, leaf)| {
                w.write(&leaf)?;
                w.close()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err)?;
        let mut row_group = writer.next_row_group().map_err(&err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(&err)?;
        }
        row_group.close().map_err(&err)?;
        offset += len;
        group += 1;
    }
    let file = writer.into_inner().map_err(&err)?;
    file.seal(batch.num_rows() as u64, path)
}

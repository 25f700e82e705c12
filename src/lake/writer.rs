//! Parquet encoding of lake files: zstd, page statistics, rows sorted by time.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::LakeError;
use crate::lake::schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, schema};

/// Rows per row group: large enough for good compression, small enough for pruning.
const ROW_GROUP_ROWS: usize = 128 * 1024;

fn parquet_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> LakeError + '_ {
    move |e| LakeError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Concatenates `batches` and sorts the rows by (event_time, event_id).
pub fn sort_batches(batches: &[RecordBatch]) -> Result<RecordBatch, LakeError> {
    let all = concat_batches(&schema(), batches).map_err(|e| LakeError::Arrow(e.to_string()))?;
    let cols = [0usize, 1]
        .iter()
        .map(|&i| SortColumn {
            values: all.column(i).clone(),
            options: None,
        })
        .collect::<Vec<_>>();
    let idx = lexsort_to_indices(&cols, None).map_err(|e| LakeError::Arrow(e.to_string()))?;
    take_record_batch(&all, &idx).map_err(|e| LakeError::Arrow(e.to_string()))
}

fn properties(path: &Path) -> Result<WriterProperties, LakeError> {
    Ok(WriterProperties::builder()
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
        )]))
        .build())
}

/// A lake file being written batch by batch (compaction streams into it).
pub struct LakeFileWriter {
    path: std::path::PathBuf,
    inner: ArrowWriter<File>,
    rows: u64,
}

impl LakeFileWriter {
    pub fn create(path: &Path) -> Result<Self, LakeError> {
        let file = File::create(path).map_err(LakeError::io(path))?;
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

    /// Closes the file and syncs it to disk; returns its row count.
    pub fn finish(self) -> Result<u64, LakeError> {
        let path = self.path;
        let file = self.inner.into_inner().map_err(parquet_err(&path))?;
        file.sync_all().map_err(LakeError::io(&path))?;
        Ok(self.rows)
    }
}

/// Writes one sorted batch to `path` and syncs it to disk.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), LakeError> {
    let mut w = LakeFileWriter::create(path)?;
    w.write(batch)?;
    w.finish().map(|_| ())
}

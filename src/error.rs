//! Typed errors. Every variant names the file, object, record or field at fault.

use std::path::PathBuf;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid TOML for cetrail: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration {path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Why one input object could not be read as a CloudTrail log file. The object is
/// rejected, recorded in the ledger with this reason, and the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("empty file")]
    Empty,
    #[error("corrupt or truncated gzip: {0}")]
    Gzip(String),
    #[error("decompressed size exceeds the limit of {limit} bytes (gzip bomb?)")]
    TooLarge { limit: u64 },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("JSON but not a CloudTrail log file: {0}")]
    NotCloudTrail(String),
    /// Content of none of the shapes ingest reads, in a file whose name does not say
    /// it is a log: skipped by rule, not rejected.
    #[error("not a log: {0}")]
    NotALog(String),
    /// The object CloudWatch Logs writes to check that it may write the bucket.
    #[error("not a log: CloudWatch Logs' write test of an export")]
    ExportWriteTest,
    #[error(
        "a CSV download of Event History holds no whole records: download JSON from the console, or run `aws cloudtrail lookup-events` (or `cetrail ingest event-history:<region>`)"
    )]
    EventHistoryCsv,
}

/// Why one record inside a readable log file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the record in the file's `Records` array (or line number - 1).
    pub index: usize,
    /// The file is read a line a unit (a log export): the error names line `index + 1`.
    pub line: bool,
    pub message: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line {
            write!(f, "line {}: {}", self.index + 1, self.message)
        } else {
            write!(f, "record {}: {}", self.index, self.message)
        }
    }
}

impl std::error::Error for RecordError {}

/// Errors of the lake (Parquet files, ledger, lock).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LakeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing Parquet {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("building Arrow columns: {0}")]
    Arrow(String),
    #[error("ledger segment {path} is corrupt: {message}")]
    Ledger { path: PathBuf, message: String },
    #[error("lake {path} is locked by another cetrail process (lock file {})", lock.display())]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("{path} is not a cetrail lake: {message}")]
    NotALake { path: PathBuf, message: String },
    /// A committed lake file that is not as its segment committed it (SPEC §11).
    #[error(
        "lake file {file}, committed by {segment}, {problem}: the lake is damaged and is not read (`cetrail lake check --lake {}` lists every problem; ingesting the sources of that segment's objects again, into a new lake, recovers their events)",
        root.display()
    )]
    Damaged {
        root: PathBuf,
        file: String,
        segment: String,
        problem: String,
    },
    #[error("lake on S3, {key}: {message}")]
    Remote { key: String, message: String },
}

impl LakeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LakeError {
        let path = path.into();
        move |source| LakeError::Io { path, source }
    }
}

/// Errors while discovering input objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("source {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("source {0} does not exist or is not a folder")]
    NotFound(PathBuf),
    #[error("unsupported source `{0}` (expected a local folder or s3://bucket/prefix)")]
    Unsupported(String),
    #[error("{0}")]
    Remote(String),
}

/// Errors of the synthetic archive generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid generator parameter {name}: {message}")]
    Param { name: &'static str, message: String },
    #[error("the digest signing key: {0}")]
    Key(String),
}

/// Errors that stop `verify` as a whole (a bad object is a finding, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("public keys or signatures {path}: {message}")]
    Keys { path: PathBuf, message: String },
    #[error("{0}")]
    Source(String),
}

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
}

/// Why one record inside a readable log file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index}: {message}")]
pub struct RecordError {
    /// Position of the record in the file's `Records` array (or line number - 1).
    pub index: usize,
    pub message: String,
}

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

//! # cetrail — offline CloudTrail analytics for vendor cross-account access
//!
//! The pipeline, one module per stage of the data's journey:
//!
//! ```text
//!  source/   list objects (local folder, S3) and read their bytes
//!     │
//!  record/   gunzip → split into raw records → CE pre-filter → typed record
//!     │      → CE rule (assume / activity / infra) → derived fields (SPEC §3)
//!     │
//!  lake/     Arrow batches → sorted Parquet per month → ledger commit (SPEC §4)
//!     │
//!  (query/, detect/, render/: widgets, Sigma detections, audit, timeline and
//!   reports read the lake; serve/: all of it in a browser)
//! ```
//!
//! `ingest` drives source → record → lake; `generate` writes synthetic archives for the
//! sample data, tests and benchmarks; `config` holds every name and number of the
//! access model (SPEC §8). The binary (`main.rs`, `cli/`) only parses arguments and
//! calls this library.
//!
//! Exit statuses of the binary: 0 success, 1 a check failed (audit, verify),
//! 2 usage or fatal error, 3 finished but some input was rejected.

pub mod config;
pub mod detect;
pub mod error;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod query;
pub mod record;
pub mod render;
pub mod serve;
pub mod source;
pub mod verify;

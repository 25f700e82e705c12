//! One integration test binary, split by theme (ripgrep's layout).

mod util;

mod api_sources;
mod audit;
mod bad_input;
mod crash;
mod derive;
mod detect;
mod generate;
mod ingest;
mod lake_check;
mod proptest_parser;
mod report;
mod s3;
mod s3_lake;
mod scale;
mod serve;
mod sources;
mod timeline;
mod verify;
mod widgets;

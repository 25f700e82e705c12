//! Property tests: arbitrary bytes, truncations and mutations of valid log files never
//! panic the parser; they give a clean reject or a correct parse.

use cetrail::config::Config;
use cetrail::record::filter::Prefilter;
use cetrail::record::gunzip::{Gunzip, gzip};
use cetrail::record::{ParseOptions, parse_log};
use proptest::prelude::*;

fn valid_log() -> String {
    let recs: Vec<serde_json::Value> = crate::util::stratus()
        .into_iter()
        .flat_map(|(_, r)| r)
        .take(12)
        .map(|mut r| {
            // Make some of them CE sessions so the full parse path runs.
            if r["userIdentity"]["type"] == "AssumedRole" {
                r["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = "CE-SRE".into();
            }
            r
        })
        .collect();
    serde_json::json!({ "Records": recs }).to_string()
}

fn check(data: &[u8]) -> Result<(u64, usize, u64), String> {
    let config = Config::default();
    let pf = Prefilter::new(&config);
    for all in [false, true] {
        let opts = ParseOptions {
            config: &config,
            prefilter: &pf,
            all_events: all,
            max_record_bytes: 1 << 16,
        };
        if let Ok(p) = parse_log(data, &opts) {
            // Every record is either kept, skipped or counted as bad, never more.
            assert!(p.rows.len() as u64 + p.bad_records <= p.records);
            if all {
                return Ok((p.records, p.rows.len(), p.bad_records));
            }
        }
    }
    Err("rejected".into())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = check(&data);
        let mut g = Gunzip::new().expect("alloc");
        let mut out = Vec::new();
        let _ = g.decompress(&data, &mut out, 1 << 20);
    }

    #[test]
    fn truncations_reject_cleanly(cut in 0usize..100_000) {
        let log = valid_log();
        let cut = cut % log.len();
        // A cut JSON document is never a valid log file.
        prop_assert!(check(&log.as_bytes()[..cut]).is_err());
        let gz = gzip(log.as_bytes(), 6);
        let gcut = cut % gz.len();
        let mut g = Gunzip::new().expect("alloc");
        let mut out = Vec::new();
        prop_assert!(g.decompress(&gz[..gcut], &mut out, 1 << 24).is_err());
    }

    #[test]
    fn mutations_parse_or_reject(pos in any::<usize>(), byte in any::<u8>()) {
        let log = valid_log();
        let mut data = log.clone().into_bytes();
        let i = pos % data.len();
        data[i] = byte;
        if let Ok((records, rows, bad)) = check(&data) {
            prop_assert!(records <= 13);
            prop_assert_eq!(rows as u64 + bad, records);
        }
        // A mutated gzip stream decompresses to the original bytes or fails.
        let mut gz = gzip(log.as_bytes(), 6);
        let j = pos % gz.len();
        gz[j] = byte;
        let mut g = Gunzip::new().expect("alloc");
        let mut out = Vec::new();
        if g.decompress(&gz, &mut out, 1 << 24).is_ok() {
            prop_assert_eq!(out, log.into_bytes());
        }
    }

    #[test]
    fn the_unmutated_log_parses_fully(_x in 0u8..1) {
        let log = valid_log();
        let (records, rows, bad) = check(log.as_bytes()).expect("valid log parses");
        prop_assert_eq!((records, rows as u64, bad), (12, 12, 0));
    }
}

//! `cetrail lake repair`: which source objects fed a damaged lake file (SPEC §11).
//!
//! A file committed by an ingest holds the rows of its month read from the objects its
//! segment lists. A file committed by compaction holds the rows of the files that
//! segment removed, each committed by an earlier segment: the walk goes back through
//! them to the ingests. Reading those objects again (whatever the ledger says of
//! them), keeping their rows of the damaged files' months, gives the damaged files'
//! events; one commit adds them and retires the damaged files (moved to
//! `_cetrail/quarantine/`). The view's dedup removes the rows the new files share with
//! intact files of the same month (a compacted month's siblings).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::check::{Problem, Report, check};
use super::ledger::{Segment, Status, read_segments, segment_name};
use crate::error::LakeError;

/// A repair's ingest: only these source objects are read, whether the ledger knows
/// them or not; only their rows of these months are kept; everything is one commit,
/// which retires the damaged files.
#[derive(Debug, Clone, Default)]
pub struct Repair {
    pub keys: HashSet<String>,
    pub months: BTreeSet<String>,
    /// The damaged files, relative to the lake root.
    pub retire: Vec<String>,
}

/// What the lake needs: the check's report, and the repair of its damaged files
/// (`None` when there are none). Stray files are reported, never repaired.
pub fn plan(root: &Path, deep: bool) -> Result<(Report, Option<Repair>), LakeError> {
    let report = check(root, deep)?;
    let damaged: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| p.segment.is_some())
        .collect();
    if damaged.is_empty() {
        return Ok((report, None));
    }
    let segments = read_segments(root)?;
    let by_name: HashMap<String, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("_cetrail/ledger/{}", segment_name(&s.header)), i))
        .collect();
    let mut repair = Repair::default();
    for p in damaged {
        if let Some(i) = p.segment.as_ref().and_then(|s| by_name.get(s)) {
            origins(&segments, *i, &mut repair.keys);
        }
        let month = p
            .file
            .split('/')
            .find_map(|part| part.strip_prefix("month="))
            .unwrap_or_default();
        repair.months.insert(month.to_string());
        repair.retire.push(p.file.clone());
    }
    Ok((report, Some(repair)))
}

/// The keys of the objects whose events went into the files segment `i` committed: its
/// own objects, and those behind the files it removed (compaction).
fn origins(segments: &[Segment], i: usize, keys: &mut HashSet<String>) {
    let s = &segments[i];
    keys.extend(
        s.objects
            .iter()
            .filter(|o| o.status == Status::Ingested && o.kept > 0)
            .map(|o| o.key.clone()),
    );
    for removed in &s.header.removed {
        // The latest earlier segment that committed the removed file.
        if let Some(j) = (0..i)
            .rev()
            .find(|j| segments[*j].header.files.iter().any(|f| &f.path == removed))
        {
            origins(segments, j, keys);
        }
    }
}

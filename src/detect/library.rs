//! Where rules come from: our own (`queries/rules/`, built into the binary) and the
//! files and folders a user names (`.yml` / `.yaml`, folders walked in name order).

use std::path::{Path, PathBuf};

use super::{Loaded, RuleError, load};

/// Our own rules, as (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "ce_admin_at_night.yml",
        include_str!("../../queries/rules/ce_admin_at_night.yml"),
    ),
    (
        "ce_data_beyond_database_instances.yml",
        include_str!("../../queries/rules/ce_data_beyond_database_instances.yml"),
    ),
    (
        "ce_long_lived_credentials.yml",
        include_str!("../../queries/rules/ce_long_lived_credentials.yml"),
    ),
    (
        "ce_roles_modified.yml",
        include_str!("../../queries/rules/ce_roles_modified.yml"),
    ),
    (
        "ce_ssh_access.yml",
        include_str!("../../queries/rules/ce_ssh_access.yml"),
    ),
    (
        "ce_trail_tampering.yml",
        include_str!("../../queries/rules/ce_trail_tampering.yml"),
    ),
];

/// Why rules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("reading rules from {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Rule(#[from] RuleError),
}

/// Each rule document of our own rules, with the file it came from.
pub fn builtin() -> Result<Vec<(String, Loaded)>, RuleError> {
    let mut out = Vec::new();
    for (name, text) in BUILTIN {
        let file = format!("queries/rules/{name}");
        for l in load(Path::new(&file), text)? {
            out.push((file.clone(), l));
        }
    }
    Ok(out)
}

/// Each rule document of the file `path`, or of every `.yml`/`.yaml` file under the
/// folder `path`.
pub fn from_path(path: &Path) -> Result<Vec<(String, Loaded)>, LibraryError> {
    let io = |source| LibraryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        walk(path, &mut files).map_err(io)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LibraryError::Io {
            path: f.clone(),
            source,
        })?;
        let file = f.display().to_string();
        for l in load(&f, &text)? {
            out.push((file.clone(), l));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_queries_rules_is_built_in_and_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("queries/rules")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let built: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, built, "BUILTIN lists queries/rules/");
        let rules = builtin().expect("our rules load");
        assert_eq!(rules.len(), BUILTIN.len());
        assert!(rules.iter().all(|(_, l)| matches!(l, Loaded::Rule(_))));
    }
}

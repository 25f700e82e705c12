//! A local folder in the S3 layout.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::error::SourceError;
use crate::source::{Object, Source};

/// A local folder whose relative paths are the object keys.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(SourceError::NotFound(root));
        }
        Ok(Self { root })
    }

    /// Lists every regular file below the root, sorted by key. Folder symlinks are not
    /// followed (no cycles); file symlinks are.
    fn list_files(&self) -> Result<Vec<Object>, SourceError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| SourceError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| SourceError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                let file_type = entry.file_type().map_err(|source| SourceError::Io {
                    path: path.clone(),
                    source,
                })?;
                if file_type.is_dir() {
                    stack.push(path);
                    continue;
                }
                let meta = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    _ => continue, // dangling link, socket, fifo: not an object
                };
                let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                let (key, unreadable_name) = key_of(rel);
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                out.push(Object {
                    key,
                    size: meta.len(),
                    version: format!("mtime:{mtime}"),
                    unreadable_name,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The path of an object.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Vec<Object>, SourceError> {
        self.list_files()
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        std::fs::read(self.path_of(&object.key)).map_err(|e| e.to_string())
    }
}

/// The `/`-separated key of a relative path, and a reason when it is not valid UTF-8.
fn key_of(rel: &Path) -> (String, Option<String>) {
    let mut parts = Vec::new();
    let mut bad = false;
    for c in rel.components() {
        let s = c.as_os_str();
        match s.to_str() {
            Some(t) => parts.push(t.to_string()),
            None => {
                bad = true;
                parts.push(s.to_string_lossy().into_owned());
            }
        }
    }
    let key = parts.join("/");
    let reason = bad.then(|| format!("file name is not valid UTF-8 ({key:?})"));
    (key, reason)
}

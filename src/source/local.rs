//! A local folder in the S3 layout.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

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
    /// followed (no cycles); file symlinks are. Sibling folders are listed in parallel
    /// (an archive is thousands of day folders).
    fn list_files(&self) -> Result<Vec<Object>, SourceError> {
        let mut out = self.list_dir(&self.root)?;
        out.par_sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The files below `dir`, unordered.
    fn list_dir(&self, dir: &Path) -> Result<Vec<Object>, SourceError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SourceError::Io { path, source }
        };
        let mut out = Vec::new();
        let mut folders = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let file_type = entry.file_type().map_err(io(&entry.path()))?;
            if file_type.is_dir() {
                folders.push(entry.path());
                continue;
            }
            // A plain file is stat'ed relative to its open folder; a link is followed.
            let meta = if file_type.is_symlink() {
                std::fs::metadata(entry.path())
            } else {
                entry.metadata()
            };
            let meta = match meta {
                Ok(m) if m.is_file() => m,
                _ => continue, // dangling link, socket, fifo: not an object
            };
            let path = entry.path();
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
        let below: Vec<Vec<Object>> = folders
            .par_iter()
            .map(|f| self.list_dir(f))
            .collect::<Result<_, _>>()?;
        out.extend(below.into_iter().flatten());
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
        use std::io::Read;
        // The listing's size sizes the buffer (no second stat); a file that grew since
        // is still read whole.
        let mut file = std::fs::File::open(self.path_of(&object.key)).map_err(|e| e.to_string())?;
        let mut out =
            Vec::with_capacity(usize::try_from(object.size).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
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

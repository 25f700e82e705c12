//! A local folder in the S3 layout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use crate::error::SourceError;
use crate::source::{Body, Fetched, Object, Source, read_file_into};

/// Objects per batch of a streamed listing.
const LISTING_BATCH: usize = 256;

/// A local folder whose relative paths are the object keys.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
    /// The folder of the last deferred object ([`Source::defer`]): objects come in key
    /// order, so a folder is opened once for all its files.
    last_folder: Arc<Mutex<Option<Arc<Folder>>>>,
}

/// A folder whose files are deferred, kept open while any of them waits for its
/// parser: each file is opened relative to it (one name to look up instead of every
/// component of the path).
#[derive(Debug)]
struct Folder {
    /// Its key: empty at the root, else ending with `/`.
    key: String,
    path: PathBuf,
    /// `O_PATH` handle of the folder; `None` where it could not be opened (each file
    /// is then opened by its path, which reports what is wrong).
    #[cfg(target_os = "linux")]
    fd: Option<rustix::fd::OwnedFd>,
}

/// A local file its parser opens ([`Body::Path`]).
#[derive(Debug)]
pub struct Deferred {
    folder: Arc<Folder>,
    name: String,
}

impl Deferred {
    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.folder.path.join(&self.name)
    }

    /// Opens the file (see [`open_file`]; the page cache is probed when it is read).
    pub(crate) fn open(&self, max_bytes: u64) -> Result<(Body, (u64, String)), String> {
        #[cfg(target_os = "linux")]
        if let Some(dir) = &self.folder.fd {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::openat(
                dir,
                self.name.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| std::io::Error::from(e).to_string())?;
            return opened(std::fs::File::from(fd), max_bytes, true);
        }
        open_file(&self.path(), max_bytes, true)
    }
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(SourceError::NotFound(root));
        }
        Ok(Self {
            root,
            last_folder: Arc::default(),
        })
    }

    /// The open folder of `key`'s file (the last one again while keys share it).
    fn folder_of(&self, key: &str) -> (Arc<Folder>, String) {
        let (dir, name) = match key.rfind('/') {
            Some(i) => (&key[..=i], &key[i + 1..]),
            None => ("", key),
        };
        // A poisoned lock only means another reader panicked: the cache is still sound.
        let mut last = self
            .last_folder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(folder) = last.as_ref().filter(|f| f.key == dir) {
            return (folder.clone(), name.to_string());
        }
        let path = self.root.join(dir);
        #[cfg(target_os = "linux")]
        let fd = {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(
                &path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        };
        let folder = Arc::new(Folder {
            key: dir.to_string(),
            path,
            #[cfg(target_os = "linux")]
            fd,
        });
        *last = Some(folder.clone());
        (folder, name.to_string())
    }

    /// Walks the folder depth-first with each folder's entries in key order (a folder
    /// `d` sorts as `d/`, which is where its keys fall among its siblings), so objects
    /// come out sorted by key without a global sort. Folder symlinks are not followed
    /// (no cycles); file symlinks are. `prefix` is the key of `dir` with a trailing
    /// `/` (empty at the root), `bad_prefix` whether it has a name that is not UTF-8.
    /// Without `stat`, plain files with UTF-8 names are listed without size and
    /// version (`stat_deferred`); links are still followed and checked. Returns
    /// `false` when `sink` asked to stop.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        bad_prefix: bool,
        stat: bool,
        batch: &mut Vec<Object>,
        sink: &mut dyn FnMut(Vec<Object>) -> bool,
    ) -> Result<bool, SourceError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SourceError::Io { path, source }
        };
        // (key, not UTF-8, entry, type): each key built once, in full, for the sort.
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let file_type = entry.file_type().map_err(io(&entry.path()))?;
            let name = entry.file_name();
            let (text, bad) = match name.to_str() {
                Some(t) => (std::borrow::Cow::Borrowed(t), false),
                None => (name.to_string_lossy(), true),
            };
            let mut key = String::with_capacity(prefix.len() + text.len() + 1);
            key.push_str(prefix);
            key.push_str(&text);
            if file_type.is_dir() {
                key.push('/');
            }
            entries.push((key, bad_prefix || bad, entry, file_type));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, bad, entry, file_type) in entries {
            if file_type.is_dir() {
                if !self.walk(&entry.path(), &key, bad, stat, batch, sink)? {
                    return Ok(false);
                }
                continue;
            }
            let unreadable_name = bad.then(|| format!("file name is not valid UTF-8 ({key:?})"));
            // A name that is not UTF-8 has a lossy key, which cannot be opened again:
            // such a file is stat'ed here, through its real name.
            let (size, version, stat_deferred) = if !stat && file_type.is_file() && !bad {
                (0, String::new(), true)
            } else {
                // A plain file is stat'ed relative to its open folder; a link is followed.
                let meta = if file_type.is_symlink() {
                    std::fs::metadata(entry.path())
                } else {
                    entry.metadata()
                };
                match meta {
                    Ok(m) if m.is_file() => (m.len(), version_of(&m), false),
                    _ => continue, // dangling link, socket, fifo: not an object
                }
            };
            batch.push(Object {
                key,
                size,
                version,
                unreadable_name,
                stat_deferred,
            });
            if batch.len() >= LISTING_BATCH && !sink(std::mem::take(batch)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The whole walk in batches (`stat`: see [`LocalSource::walk`]).
    fn list_streamed(
        &self,
        stat: bool,
        sink: &mut dyn FnMut(Vec<Object>) -> bool,
    ) -> Result<(), SourceError> {
        let mut batch = Vec::new();
        if self.walk(&self.root, "", false, stat, &mut batch, sink)? && !batch.is_empty() {
            sink(batch);
        }
        Ok(())
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
        crate::source::collect_listing(self)
    }

    fn list_each(&self, sink: &mut dyn FnMut(Vec<Object>) -> bool) -> Result<(), SourceError> {
        self.list_streamed(true, sink)
    }

    fn list_each_deferred(
        &self,
        sink: &mut dyn FnMut(Vec<Object>) -> bool,
    ) -> Result<(), SourceError> {
        self.list_streamed(false, sink)
    }

    fn stat(&self, object: &Object) -> Result<(u64, String), String> {
        let meta = std::fs::metadata(self.path_of(&object.key)).map_err(|e| e.to_string())?;
        Ok((meta.len(), version_of(&meta)))
    }

    fn fetch(&self, object: &Object, max_bytes: u64) -> Result<Fetched, String> {
        // Size and version from the open file (no second path lookup); the bytes are
        // read later by the parser (see `Body::File`).
        let (body, stat) = open_file(&self.path_of(&object.key), max_bytes, false)?;
        if let Body::File { file, size, .. } = &body {
            will_need(file, *size);
        }
        Ok(Fetched {
            ids: Vec::new(),
            body,
            stat: object.stat_deferred.then_some(stat),
        })
    }

    fn defer(&self, object: &Object) -> Option<Body> {
        // Only where a read can tell whether the page cache held the file (the
        // reader goes back to fetching ahead when it did not).
        cfg!(target_os = "linux").then(|| {
            let (folder, name) = self.folder_of(&object.key);
            Body::Path(Deferred { folder, name })
        })
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        // The listing's size sizes the buffer (no second stat).
        let file = std::fs::File::open(self.path_of(&object.key)).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        read_file_into(&file, object.size, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Opens a local file for ingest: `Body::File` (read later, with a probe of the page
/// cache when `probe`) or `Body::TooLarge` when it holds more than `max_bytes`, with its
/// size and version.
pub(crate) fn open_file(
    path: &Path,
    max_bytes: u64,
    probe: bool,
) -> Result<(Body, (u64, String)), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    opened(file, max_bytes, probe)
}

/// [`open_file`] once the file is open.
fn opened(
    file: std::fs::File,
    max_bytes: u64,
    probe: bool,
) -> Result<(Body, (u64, String)), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let stat = (meta.len(), version_of(&meta));
    if meta.len() > max_bytes {
        return Ok((Body::TooLarge, stat));
    }
    let body = Body::File {
        file,
        size: meta.len(),
        probe,
    };
    Ok((body, stat))
}

/// Reads `file` (of `size` bytes when opened) to its end into `buf`, asking first for
/// only what the page cache holds (`RWF_NOWAIT`). Returns the length read (the content
/// is `buf[..n]`; `buf` keeps its bytes initialised and may be longer) and whether the
/// page cache held the whole file (`false` too where the kernel cannot say).
pub(crate) fn read_probing(
    file: &std::fs::File,
    size: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<(usize, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    // One byte more than the size: a file that grew since it was opened is read on.
    let want = usize::try_from(size)
        .map_err(|_| std::io::Error::other("file too large for this platform"))?
        .saturating_add(1);
    if buf.len() < want {
        // Only the growth is zeroed: the buffer is reused across files.
        buf.resize(want, 0);
    }
    let mut n = nowait_read(file, &mut buf[..want]);
    if n as u64 == size {
        // All of it (and not a byte more: the file did not grow) from the page cache.
        return Ok((n, true));
    }
    // The rest (all of it when nothing was cached) with reads that wait, to the end.
    let mut file = file;
    file.seek(SeekFrom::Start(n as u64))?;
    loop {
        if n == buf.len() {
            buf.resize(buf.len().saturating_mul(2).max(4096), 0);
        }
        match file.read(&mut buf[n..]) {
            Ok(0) => return Ok((n, false)),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads from offset 0 what the page cache holds of `file`, without waiting for the
/// disk; 0 when nothing is cached or the kernel cannot read that way.
#[cfg(target_os = "linux")]
fn nowait_read(file: &std::fs::File, buf: &mut [u8]) -> usize {
    let mut slices = [std::io::IoSliceMut::new(buf)];
    rustix::io::preadv2(file, &mut slices, 0, rustix::io::ReadWriteFlags::NOWAIT).unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn nowait_read(_file: &std::fs::File, _buf: &mut [u8]) -> usize {
    0
}

/// Asks the kernel to start reading a file into the page cache now, so that a cold
/// archive's reads are in flight before the parser gets to them (a file already cached
/// costs a lookup). Advisory: a failure changes nothing.
fn will_need(file: &std::fs::File, size: u64) {
    #[cfg(target_os = "linux")]
    if let Some(len) = std::num::NonZeroU64::new(size) {
        let _ = rustix::fs::fadvise(file, 0, Some(len), rustix::fs::Advice::WillNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, size);
}

/// An object's version: its modification time in nanoseconds (`mtime:<ns>`).
fn version_of(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("mtime:{mtime}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed listing comes out in key order without a sort, including where a
    /// folder name is a prefix of a sibling's (`a/…` sorts after `a-b`, before `a0`),
    /// and stopping early stops the walk.
    #[test]
    fn walk_yields_key_order() -> Result<(), Box<dyn std::error::Error>> {
        let root = std::env::temp_dir().join(format!("cetrail-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let files = [
            "a/x", "a/y/z", "a-b", "a0", "a.json", "b/c/d/e", "b/c-", "b/c0/f", "B", "_", "~",
        ];
        for f in files {
            let p = root.join(f);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, f)?;
        }
        let source = LocalSource::new(&root)?;
        let keys: Vec<String> = source.list()?.into_iter().map(|o| o.key).collect();
        let mut sorted: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        sorted.sort();
        assert_eq!(keys, sorted);
        let mut batches = 0;
        source.list_each(&mut |b| {
            batches += 1;
            assert!(!b.is_empty());
            false
        })?;
        assert_eq!(batches, 1);
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }

    /// A probed read gives the file's bytes whatever the buffer held before (it is
    /// reused, longer than the content), and a file just written is wholly in the page
    /// cache.
    #[test]
    fn probed_reads_give_the_content_and_see_the_page_cache()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = std::env::temp_dir().join(format!("cetrail-probe-{}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut buf = Vec::new();
        for (name, content) in [
            ("big", &big[..]),
            ("small", b"{\"Records\":[]}"),
            ("empty", b""),
        ] {
            let path = root.join(name);
            std::fs::write(&path, content)?;
            let (body, (size, version)) = open_file(&path, u64::MAX, true)?;
            assert_eq!(size, content.len() as u64);
            assert!(version.starts_with("mtime:"), "{version}");
            let Body::File { file, .. } = body else {
                return Err(format!("{name}: not opened as a file").into());
            };
            let (n, cached) = read_probing(&file, size, &mut buf)?;
            assert_eq!(&buf[..n], content, "{name}");
            assert!(cached, "{name}: just written, yet not in the page cache");
        }
        // Over the limit: not read.
        let (body, (size, _)) = open_file(&root.join("big"), 1_000, true)?;
        assert!(matches!(body, Body::TooLarge));
        assert_eq!(size, big.len() as u64);
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }
}

//! Scratch directories, and the durable log's segment files in one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A new empty directory under the system's temporary directory, unique to this process
/// and call, removed (with what is in it) when dropped unless [`TempDir::keep`] was called.
pub struct TempDir(Option<PathBuf>);

impl TempDir {
    /// `ssehub-test-TAG-PID-N`; `tag` says which test made it, for a look after a failure.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ssehub-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory of the same name left by an earlier process with this pid.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(Some(path))
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().expect("not kept")
    }

    /// The path, and the directory stays after the test: for a directory a child process
    /// may still write into while the test ends.
    pub fn keep(mut self) -> PathBuf {
        self.0.take().expect("not kept")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// The segment files (`*.log`) of a durable log in `dir`, oldest first (their names sort
/// in the order they were written).
pub fn log_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the data directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments
}

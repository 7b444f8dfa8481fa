//! The directory lock: one store per directory. Two processes appending to the same segments
//! would interleave records and corrupt the log, so [`DirLock::take`] holds an exclusive
//! advisory lock on `<dir>/lock` for the life of the store. The operating system releases it
//! when the file is closed or the process dies (even by `kill -9`), so a crash never leaves a
//! stale lock behind. The holder's pid is written into the file for the error message only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use ssehub_core::StoreError;

/// Name of the lock file in the store's directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock; dropping it (closing the file) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` without waiting: a directory another store holds (in this
    /// process or another) is [`StoreError::Unavailable`] naming the directory and, when the
    /// lock file says, the holder's pid.
    pub fn take(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        // Not truncated on open: the holder's pid must stay readable until we hold the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let by = match holder(&mut file) {
                    Some(pid) => format!("another process (pid {pid})"),
                    None => "another process".to_owned(),
                };
                return Err(StoreError::Unavailable(format!(
                    "the data directory {} is in use by {by}: it holds the lock on {}; \
                     two hubs must not share one data directory",
                    dir.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io(e)),
        }
        write_pid(&mut file)?;
        Ok(DirLock { _file: file })
    }
}

/// How long a refused opener waits for the holder to write its pid: a holder that has just
/// taken the lock may not have written it yet, and the file may still hold the pid of an
/// earlier holder that has exited.
const PID_WAIT: Duration = Duration::from_millis(500);

/// The pid in the lock file once it names a live process (`None` if none does in time).
fn holder(file: &mut File) -> Option<u32> {
    let deadline = Instant::now() + PID_WAIT;
    loop {
        let mut text = String::new();
        let pid = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .ok()
            .and_then(|_| text.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| alive(*pid)) {
            return Some(pid);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` is a running process (where `/proc` says; elsewhere assumed).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Writes the pid in one write of a fixed width, so a reader never sees a half-written one.
fn write_pid(file: &mut File) -> io::Result<()> {
    let record = format!("{:<20}\n", std::process::id());
    file.seek(SeekFrom::Start(0))?;
    file.write_all(record.as_bytes())?;
    file.set_len(record.len() as u64)
}

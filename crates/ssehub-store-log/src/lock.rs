//! The directory lock: one store per directory. Two processes appending to the same segments
//! would interleave records and corrupt the log, so [`DirLock::take`] holds an exclusive
//! advisory lock on `<dir>/lock` for the life of the store. The operating system releases it
//! when the file is closed or the process dies (even by `kill -9`), so a crash never leaves a
//! stale lock behind. The holder's pid is written into the file for the error message only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

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
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text) {
                    Ok(_) => text.trim().parse::<u32>().ok(),
                    Err(_) => None,
                };
                let by = match holder {
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

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

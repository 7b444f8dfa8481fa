//! Retention classes on disk: one log per class. The default class is the log in the
//! store's directory itself (so a directory from before classes opens unchanged); the class
//! of a rule lives in `<dir>/classes/<name>`, where the name is made from the rule's topic
//! pattern (readable prefix, then a hash of the whole pattern). Reordering rules keeps each
//! class's history; changing a pattern starts a new class, and the old directory is reported
//! as unused (never deleted: that is the operator's call).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssehub_core::{ClassedStore, Store, StoreError, TopicPattern};

use crate::{LogOptions, LogStore, RecoveryReport};

/// The directory under the store's directory that holds the classes of the rules.
pub const CLASSES_DIR: &str = "classes";

/// The directory of the class of `pattern`.
pub fn class_dir(dir: &Path, pattern: &TopicPattern) -> PathBuf {
    let text = pattern.as_str();
    let readable: String = text
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across builds and platforms, which the directory name must be.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    dir.join(CLASSES_DIR)
        .join(format!("{readable}-{hash:016x}"))
}

/// A classed log, opened.
pub struct ClassedLog {
    pub store: ClassedStore,
    /// Each class's directory and what opening its log found: the default class first, then
    /// the rules' classes in rule order.
    pub opened: Vec<(PathBuf, RecoveryReport)>,
    /// Class directories under `<dir>/classes` that no rule uses any more.
    pub unused: Vec<PathBuf>,
}

/// Opens the log in `dir` as the default class with `default` options, and one log per rule
/// (see the module documentation). Two rules with the same pattern are refused.
pub fn open_classed(
    dir: &Path,
    default: LogOptions,
    rules: Vec<(TopicPattern, LogOptions)>,
) -> Result<ClassedLog, StoreError> {
    let main = LogStore::open(dir, default)?;
    let mut opened = vec![(dir.to_path_buf(), main.recovery().clone())];
    let mut classes = Vec::with_capacity(rules.len());
    let mut used = Vec::with_capacity(rules.len());
    for (pattern, options) in rules {
        let class = class_dir(dir, &pattern);
        if used.contains(&class) {
            return Err(StoreError::Unavailable(format!(
                "two retention rules for the topics {pattern}"
            )));
        }
        let store = LogStore::open(&class, options)?;
        opened.push((class.clone(), store.recovery().clone()));
        used.push(class);
        classes.push((pattern, Arc::new(store) as Arc<dyn Store>));
    }
    let mut unused = Vec::new();
    if let Ok(entries) = fs::read_dir(dir.join(CLASSES_DIR)) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !used.contains(&path) {
                unused.push(path);
            }
        }
    }
    unused.sort();
    Ok(ClassedLog {
        store: ClassedStore::new(Arc::new(main), classes),
        opened,
        unused,
    })
}

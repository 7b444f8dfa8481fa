//! CPU time and memory of process trees, read from /proc (Linux).

use std::collections::BTreeSet;
use std::fs;

use serde_json::{json, Value};

/// Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// One reading of a set of processes (summed).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub procs: usize,
    pub at_us: u64,
}

impl Sample {
    pub fn to_json(self) -> Value {
        json!({
            "cpu_s": (self.cpu_s * 1000.0).round() / 1000.0,
            "rss_kib": self.rss_kib,
            "pss_kib": self.pss_kib,
            "procs": self.procs,
            "at_us": self.at_us,
        })
    }
}

/// (ppid, utime+stime seconds) of a pid.
fn stat(pid: u32) -> Option<(u32, f64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ')' : state(0) ppid(1) ... utime(11) stime(12)
    let ppid = f.get(1)?.parse().ok()?;
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ppid, (ut + st) / TICKS))
}

fn status_kib(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn pss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The given pids and all their descendants that exist now.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut set: BTreeSet<u32> = roots
        .iter()
        .copied()
        .filter(|p| fs::metadata(format!("/proc/{p}")).is_ok())
        .collect();
    if set.is_empty() {
        return Vec::new();
    }
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((ppid, _)) = stat(pid) {
                    parents.push((pid, ppid));
                }
            }
        }
    }
    loop {
        let before = set.len();
        for (pid, ppid) in &parents {
            if set.contains(ppid) {
                set.insert(*pid);
            }
        }
        if set.len() == before {
            break;
        }
    }
    set.into_iter().collect()
}

/// Sum CPU and memory over the trees rooted at `roots`. `with_pss` reads smaps_rollup (slower).
pub fn sample(roots: &[u32], with_pss: bool) -> Sample {
    let mut s = Sample {
        at_us: crate::now_us(),
        ..Sample::default()
    };
    for pid in tree(roots) {
        if let Some((_, cpu)) = stat(pid) {
            s.cpu_s += cpu;
            s.rss_kib += status_kib(pid, "VmRSS:");
            if with_pss {
                s.pss_kib += pss_kib(pid);
            }
            s.procs += 1;
        }
    }
    s
}

/// CPU seconds and RSS of this process.
pub fn self_sample() -> Sample {
    let pid = std::process::id();
    Sample {
        cpu_s: stat(pid).map(|(_, c)| c).unwrap_or(0.0),
        rss_kib: status_kib(pid, "VmRSS:"),
        pss_kib: 0,
        procs: 1,
        at_us: crate::now_us(),
    }
}

/// Busy CPU seconds of the whole machine so far (all cores; /proc/stat minus idle and iowait).
pub fn box_busy_s() -> f64 {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return 0.0;
    }
    // user nice system idle iowait irq softirq steal ...; guest time is already in user.
    let total: f64 = v.iter().take(8).sum();
    (total - v[3] - v[4]) / TICKS
}

/// The soft and hard open-files limits of this process.
pub fn nofile_limits() -> (String, String) {
    let s = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for l in s.lines() {
        if l.starts_with("Max open files") {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 {
                return (f[3].to_string(), f[4].to_string());
            }
        }
    }
    ("?".into(), "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let s = self_sample();
        assert_eq!(s.procs, 1);
        assert!(s.rss_kib > 0);
        assert!(tree(&[std::process::id()]).contains(&std::process::id()));
        assert!(sample(&[u32::MAX - 1], true).procs == 0);
        assert!(box_busy_s() > 0.0);
    }
}

//! Peak memory of the stack's processes: `VmHWM` (the high-water mark of the
//! resident set) from `/proc/<pid>/status`.

use std::collections::HashMap;
use std::fs;

/// Peak resident memory of one process of the stack and its descendants.
pub struct Peak {
    /// The stack's name for the process (`kafka`, `daprd-todo-api`, `postgres`, ...).
    pub process: String,
    /// Sum of the peak RSS, in MiB, of the process and its descendants alive now.
    pub mib: f64,
    /// How many processes were summed: 1, or more for PostgreSQL's postmaster
    /// with its backends and background workers; 0 if the process is gone.
    pub processes: usize,
}

/// The peak memory of each of `processes` (name, PID), children included.
pub fn peaks(processes: &[(String, u32)]) -> Vec<Peak> {
    let children = children_by_parent();
    processes
        .iter()
        .map(|(name, pid)| {
            let kib: Vec<u64> = tree(*pid, &children).into_iter().filter_map(vm_hwm_kib).collect();
            Peak { process: name.clone(), mib: kib.iter().sum::<u64>() as f64 / 1024.0, processes: kib.len() }
        })
        .collect()
}

/// `pid` and all its descendants.
pub(super) fn tree(pid: u32, children: &HashMap<u32, Vec<u32>>) -> Vec<u32> {
    let mut all = vec![pid];
    let mut next = 0;
    while let Some(&p) = all.get(next) {
        all.extend(children.get(&p).into_iter().flatten());
        next += 1;
    }
    all
}

/// Every running process's children, from the parent PIDs in `/proc/*/stat`.
pub(super) fn children_by_parent() -> HashMap<u32, Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(parent) = parent_pid(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    children
}

/// The parent PID: the second field after the command name (which may hold spaces).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// `VmHWM` in KiB, `None` for a process that is gone (or a kernel thread).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

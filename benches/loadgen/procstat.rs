//! CPU time and memory of the process under test, read from Linux `/proc/<pid>/{stat,status}`.
//!
//! proc(5): `stat` fields 14 and 15 are utime and stime in clock ticks (sysconf(_SC_CLK_TCK),
//! read once through `getconf CLK_TCK`); `status` has `VmRSS` (resident now) and `VmHWM`
//! (peak resident, "high water mark"), both in kB.

use std::process::Command;

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ; 100 on every Linux we run on).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: field {} unreadable", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// `(VmRSS, VmHWM)` of `pid`, in kB.
pub fn memory_kb(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let get = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok((get("VmRSS:")?, get("VmHWM:")?))
}

/// Self-checks run by the smoke mode, on this very process.
pub fn self_check() {
    let me = std::process::id();
    let (rss, hwm) = memory_kb(me).expect("own /proc status");
    assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
    cpu_ticks(me).expect("own /proc stat");
    assert!(clock_ticks() > 0.0);
}

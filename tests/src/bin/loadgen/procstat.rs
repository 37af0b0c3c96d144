//! What `/proc` says about a process: resident memory, CPU time, threads and
//! open files.

use std::time::{Duration, Instant};

use anyhow::Context;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Resident set (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Of which anonymous memory (heap, stacks), KiB.
    pub anon_kib: u64,
    /// Peak resident set so far (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// User plus system CPU time of every thread, living or exited.
    pub cpu: Duration,
    /// CPU time the whole machine has spent busy, every core added.
    pub machine_busy: Duration,
}

impl Sample {
    /// Reads process `pid` now.
    pub fn of(pid: u32) -> anyhow::Result<Sample> {
        let at = Instant::now();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid} is gone"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(Sample {
            at,
            rss_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            hwm_kib: field("VmHWM:"),
            threads: field("Threads:"),
            fds: fd_count(pid),
            cpu: cpu_time(pid)?,
            machine_busy: machine_busy(),
        })
    }

    /// CPU used between `earlier` and this sample, as a percentage of one
    /// core.
    pub fn cpu_percent_since(&self, earlier: &Sample) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        100.0 * self.cpu.saturating_sub(earlier.cpu).as_secs_f64() / wall
    }
}

/// Open file descriptors of `pid` (0 when they cannot be listed).
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0)
}

/// `utime + stime` from `/proc/PID/stat`: the whole thread group, including
/// threads that have exited (tokio's blocking pool lets idle threads go).
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid} is gone"))?;
    // The command name is in parentheses and may hold spaces; fields are
    // counted after the last ')'. utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).context("malformed /proc/PID/stat")
    };
    // After ')' the first field is field 3 (state), so field n is at n - 3.
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_micros(total * 1_000_000 / hz))
}

/// Busy time of every core since boot, from the first line of `/proc/stat`
/// (user, nice, system, irq, softirq, steal; not idle or iowait).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_micros(busy * 1_000_000 / hz)
}

/// The machine, in one line: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib as f64 / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, {mem_gib:.0} GiB, Linux {}", kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = Sample::of(std::process::id()).expect("own /proc");
        assert!(s.rss_kib > 0 && s.threads >= 1 && s.fds >= 3, "{s:?}");
    }
}

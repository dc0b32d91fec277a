//! Measuring and reporting: latencies and their percentiles, rates, the
//! process's memory, and the summary of every figure with its ratio, target
//! and verdict.

use std::time::Duration;

/// Latencies of many calls.
#[derive(Clone, Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Adds a sample.
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (nearest rank), zero without samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

/// The CPU time of the calling thread so far (from
/// `/proc/thread-self/schedstat`, in nanoseconds); zero where unavailable.
pub fn thread_cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// The resident memory of this process (VmRSS), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The CPU time this process has used so far (user and system, all
/// threads), from /proc/self/stat; in clock ticks of 10 ms.
pub fn cpu_time() -> Option<Duration> {
    cpu_time_of("self")
}

/// The CPU time process `pid` (`self` for this one) has used so far, as
/// [`cpu_time`].
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields follow its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// The CPU time of process `pid` and its children so far: its own, that
/// of the children it has waited for (a PostgreSQL server's ended
/// backends), and that of those still running (with theirs); as
/// [`cpu_time`].
pub fn tree_cpu_time(pid: u32) -> Option<Duration> {
    let fields = |pid: &str| -> Option<(u32, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let parent: u32 = fields.get(1)?.parse().ok()?;
        let ticks: u64 = (11..=14)
            .map(|i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum::<Option<u64>>()?;
        Some((parent, ticks))
    };
    let (_, mut ticks) = fields(&pid.to_string())?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(child) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some((parent, child_ticks)) = fields(child)
            && parent == pid
        {
            ticks += child_ticks;
        }
    }
    Some(Duration::from_millis(ticks * 10))
}

/// A duration in milliseconds, e.g. `4.12 ms`.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Events per second.
pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A number with thousands separators, e.g. `12,345`.
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as u64;
    let digits = rounded.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB, e.g. `12.3 MiB`.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Bytes as KiB, e.g. `5.2 KiB`.
pub fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// How a figure compares with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Pass,
    /// The target is missed.
    Miss,
    /// No target: reported only.
    Report,
}

impl Verdict {
    /// `Pass` when `met`, else `Miss`.
    pub fn of(met: bool) -> Self {
        if met { Self::Pass } else { Self::Miss }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::Report => "report",
        }
    }
}

/// One line of the summary.
struct Row {
    scenario: &'static str,
    what: String,
    figure: String,
    target: String,
    verdict: Verdict,
}

/// Every figure that has a target (or is reported beside one), printed
/// together at the end.
#[derive(Default)]
pub struct Summary {
    rows: Vec<Row>,
}

impl Summary {
    /// Prints a verdict line under a scenario and keeps it for the summary.
    pub fn verdict(
        &mut self,
        scenario: &'static str,
        what: impl Into<String>,
        figure: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) {
        let row = Row {
            scenario,
            what: what.into(),
            figure: figure.into(),
            target: target.into(),
            verdict,
        };
        println!(
            "   => {:<38} {:>12}   {:<26} {}",
            row.what,
            row.figure,
            row.target,
            row.verdict.text()
        );
        self.rows.push(row);
    }

    /// Prints every verdict; returns how many targets were missed.
    pub fn print(&self) -> usize {
        println!();
        println!("== summary");
        for row in &self.rows {
            println!(
                "   {:<8} {:<38} {:>12}   {:<26} {}",
                row.scenario,
                row.what,
                row.figure,
                row.target,
                row.verdict.text()
            );
        }
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Miss)
            .count()
    }
}

/// The median of some values (0 without any).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A ratio, e.g. `0.82×`.
pub fn ratio(value: f64) -> String {
    format!("{value:.2}×")
}

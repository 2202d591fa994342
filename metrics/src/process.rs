//! The Go client's process metrics, read from `/proc/self` at each scrape:
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self/stat` and friends say about this process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: i64,
    pub virtual_bytes: i64,
    pub start_time_seconds: f64,
}

/// Reads `/proc/self/stat`: user + system time (fields 14, 15), start time
/// in ticks after boot (22), virtual size (23), resident pages (24). The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
pub fn parse_stat(stat: &str, ticks_per_second: f64, page_size: i64, boot_time: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state).
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks_per_second,
        start_time_seconds: boot_time + field(22)? as f64 / ticks_per_second,
        virtual_bytes: field(23)? as i64,
        resident_bytes: field(24)? as i64 * page_size,
    })
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
pub fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn read() -> Option<ProcessStats> {
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?, ticks as f64, page, boot)
}

fn open_fds() -> Option<i64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as i64)
}

fn max_fds() -> Option<i64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur.min(i64::MAX as u64) as i64)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
            encoder: &mut DescriptorEncoder,
            name: &str,
            help: &str,
            v: N,
        ) -> Result<(), std::fmt::Error> {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        }
        if let Some(p) = read() {
            let c = ConstCounter::new(p.cpu_seconds);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes)?;
            gauge(&mut encoder, "process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtual_bytes)?;
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            )?;
        }
        if let Some(n) = open_fds() {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors.", n)?;
        }
        if let Some(n) = max_fds() {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors.", n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with spaces and a parenthesis.
        let stat = "4242 (shoal d) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = parse_stat(stat, 100.0, 4096, 1_700_000_000.0).unwrap();
        assert_eq!(p.cpu_seconds, 4.0);
        assert_eq!(p.start_time_seconds, 1_700_000_000.0 + 123.45);
        assert_eq!(p.virtual_bytes, 104_857_600);
        assert_eq!(p.resident_bytes, 2560 * 4096);
        assert!(parse_stat("4242 (x) S 1", 100.0, 4096, 0.0).is_none());
        assert_eq!(parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"), Some(1_700_000_000.0));
    }

    #[test]
    fn this_process_reads() {
        let p = read().expect("/proc/self/stat");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.start_time_seconds > 1_500_000_000.0);
        assert!(open_fds().unwrap() > 0);
        assert!(max_fds().unwrap() > 0);
    }
}

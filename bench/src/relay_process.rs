//! The relay's own cost, read from `/proc` while the run goes on: CPU seconds over exactly
//! the measured window, its peak RSS in the window, its RSS before the first connection, and
//! the datagrams the kernel dropped on its UDP port because it did not read them in time.
//! Only for a relay on this host (`--relay-pid`).

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often RSS is sampled inside the window.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// What the relay process cost over the measured window.
#[derive(Clone, Debug, Serialize)]
pub struct RelayCost {
    pub pid: u32,
    /// User + system CPU seconds inside the window (all threads).
    pub cpu_secs: f64,
    pub window_secs: f64,
    /// RSS read before the run started connecting.
    pub rss_start_bytes: u64,
    /// Highest RSS sampled inside the window.
    pub rss_peak_bytes: u64,
    /// Datagrams dropped on the relay's UDP sockets (receive buffer full) from before the
    /// first connection to the window's end; `None` when `/proc/net/udp` could not be read.
    pub udp_drops: Option<u64>,
}

impl RelayCost {
    /// CPU time over the window as a percentage of one core.
    pub fn cpu_pct(&self) -> f64 {
        if self.window_secs > 0.0 {
            100.0 * self.cpu_secs / self.window_secs
        } else {
            0.0
        }
    }
}

/// CPU seconds (user + system) and RSS bytes of process `pid`, or `None` once it is gone.
pub fn read(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), so utime (14) and stime (15) sit at 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let cpu = (utime + stime) as f64 / ticks.max(1) as f64;
    Some((cpu, rss_pages * page.max(1) as u64))
}

/// Datagrams the kernel dropped on every UDP socket bound to local `port` (a reuseport
/// group has several; IPv4 and IPv6), from the last column of `/proc/net/udp{,6}`. `None` if
/// no such socket was found.
pub fn udp_drops(port: u16) -> Option<u64> {
    let mut total = None;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if local_port != Some(port) {
                continue;
            }
            if let Some(drops) = fields.last().and_then(|d| d.parse::<u64>().ok()) {
                *total.get_or_insert(0) += drops;
            }
        }
    }
    total
}

/// A thread that watches the relay over the window.
pub struct Watcher {
    handle: JoinHandle<Result<RelayCost, String>>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts watching `pid`, which serves UDP `port`: reads RSS and UDP drops now, CPU at
    /// `window_start` and `window_end`, drops again at `window_end`.
    pub fn start(
        pid: u32,
        port: u16,
        window_start: Instant,
        window_end: Instant,
    ) -> Result<Self, String> {
        let (_, rss_start_bytes) =
            read(pid).ok_or_else(|| format!("no process {pid} to watch (--relay-pid)"))?;
        let drops_start = udp_drops(port);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("relay-watch".into())
            .spawn(move || {
                let gone = || format!("relay process {pid} went away during the run");
                sleep_until(window_start, &stopped);
                let (cpu0, mut peak) = read(pid).ok_or_else(gone)?;
                let t0 = Instant::now();
                while Instant::now() < window_end && !stopped.load(Ordering::Relaxed) {
                    let left = window_end.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(RSS_EVERY));
                    if let Some((_, rss)) = read(pid) {
                        peak = peak.max(rss);
                    }
                }
                let (cpu1, rss) = read(pid).ok_or_else(gone)?;
                let udp_drops = drops_start
                    .zip(udp_drops(port))
                    .map(|(start, end)| end.saturating_sub(start));
                Ok(RelayCost {
                    pid,
                    cpu_secs: (cpu1 - cpu0).max(0.0),
                    window_secs: t0.elapsed().as_secs_f64(),
                    rss_start_bytes,
                    rss_peak_bytes: peak.max(rss),
                    udp_drops,
                })
            })
            .map_err(|e| format!("spawning the relay watcher: {e}"))?;
        Ok(Self { handle, stop })
    }

    /// Waits for the window to end (or stops early) and returns what was measured.
    pub fn finish(self, early: bool) -> Result<RelayCost, String> {
        if early {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.handle
            .join()
            .map_err(|_| "the relay watcher panicked".to_string())?
    }
}

fn sleep_until(at: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(RSS_EVERY));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let (cpu, rss) = read(std::process::id()).expect("our own /proc entry");
        assert!(cpu >= 0.0);
        assert!(rss > 0);
        assert!(read(u32::MAX).is_none(), "no such pid");
    }

    #[test]
    fn counts_datagrams_a_full_receive_buffer_dropped() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = receiver.local_addr().unwrap().port();
        assert_eq!(udp_drops(port), Some(0));
        // Never read: once the (default-sized) buffer is full, the kernel drops the rest.
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..5000 {
            sender.send_to(&[0u8; 1000], ("127.0.0.1", port)).unwrap();
        }
        assert!(udp_drops(port).unwrap() > 0);
        drop(receiver);
        assert_eq!(udp_drops(port), None, "no socket on that port any more");
    }

    #[test]
    fn watches_a_short_window() {
        let now = Instant::now();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pid = std::process::id();
        let window_start = now + Duration::from_millis(20);
        // The window ends when the test says so (finish(true)), not at a wall-clock time that a
        // loaded machine may reach before this thread got any CPU inside it.
        let w = Watcher::start(
            pid,
            port.local_addr().unwrap().port(),
            window_start,
            now + Duration::from_secs(60),
        )
        .unwrap();
        std::thread::sleep(
            window_start.saturating_duration_since(Instant::now()) + Duration::from_millis(10),
        );
        // Burn CPU inside the window until the kernel has counted some (it counts in clock
        // ticks), so the figure is not trivially zero.
        let (cpu_start, _) = read(pid).unwrap();
        let mut x = 0u64;
        while read(pid).unwrap().0 < cpu_start + 0.05 {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let cost = w.finish(true).unwrap();
        assert!(cost.window_secs > 0.0, "{cost:?}");
        assert!(cost.cpu_secs > 0.0, "{cost:?}");
        assert!(cost.rss_peak_bytes >= cost.rss_start_bytes / 2, "{cost:?}");
        assert_eq!(cost.udp_drops, Some(0), "{cost:?}");
    }
}

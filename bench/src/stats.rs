//! Counters and the latency histogram each worker keeps, their merge, and the final report
//! (a human table on stdout and the same figures as JSON).

use crate::args::{TransportKind, Workload};
use crate::relay_process::RelayCost;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;

/// What one worker counted. Merged into one after the run.
pub struct Stats {
    /// Connections whose QUIC handshake completed.
    pub connected: u64,
    /// Connections that also received the relay's SETUP.
    pub setup_done: u64,
    /// Connections that failed to connect (handshake timeout, refused, closed early).
    pub connect_failed: u64,
    /// Connections still established when the run ended.
    pub alive_at_end: u64,
    /// Connections the relay or an idle timeout closed during the run.
    pub closed_early: u64,
    /// Subscriptions that started (SUBSCRIBE_START seen).
    pub subscribed: u64,
    /// Subscription attempts the relay refused (reset before start), then retried.
    pub subscribe_refused: u64,
    /// Frames written, in total and inside the measured window.
    pub frames_sent: u64,
    pub frames_sent_measured: u64,
    /// Frames the plan expects delivered: measured frames × subscribers of their track.
    pub frames_expected: u64,
    /// Measured frames received (by any subscriber), and their payload bytes.
    pub frames_delivered: u64,
    pub bytes_delivered: u64,
    /// Group streams the relay reset.
    pub groups_reset: u64,
    /// Groups skipped in a subscription's sequence.
    pub groups_lost: u64,
    /// Frames missing inside a group (a gap in the sender's sequence).
    pub frames_gap: u64,
    /// The longest time one subscriber went without a frame inside the measured window,
    /// nanoseconds.
    pub longest_gap_ns: u64,
    /// Fake Initials the flood sent (`--flood-ports`).
    pub flood_datagrams: u64,
    /// Datagrams the socket refused (EAGAIN); QUIC retransmits them.
    pub send_drops: u64,
    /// UDP datagrams received from the relay, over the whole run (GRO batches counted
    /// per datagram).
    pub datagrams_received: u64,
    /// Their UDP payload bytes.
    pub bytes_received: u64,
    /// UDP datagrams sent to the relay (for viewers, nearly all ACKs), over the whole run.
    pub datagrams_sent: u64,
    /// One-way latency, microseconds.
    pub latency_us: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            connected: 0,
            setup_done: 0,
            connect_failed: 0,
            alive_at_end: 0,
            closed_early: 0,
            subscribed: 0,
            subscribe_refused: 0,
            frames_sent: 0,
            frames_sent_measured: 0,
            frames_expected: 0,
            frames_delivered: 0,
            bytes_delivered: 0,
            groups_reset: 0,
            groups_lost: 0,
            frames_gap: 0,
            longest_gap_ns: 0,
            flood_datagrams: 0,
            send_drops: 0,
            datagrams_received: 0,
            datagrams_sent: 0,
            bytes_received: 0,
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
        }
    }

    /// Records one measured frame received `latency_ns` after it was sent.
    pub fn record(&mut self, latency_ns: u64, bytes: u64) {
        self.frames_delivered += 1;
        self.bytes_delivered += bytes;
        self.latency_us
            .saturating_record((latency_ns / 1000).max(1));
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.connected += other.connected;
        self.setup_done += other.setup_done;
        self.connect_failed += other.connect_failed;
        self.alive_at_end += other.alive_at_end;
        self.closed_early += other.closed_early;
        self.subscribed += other.subscribed;
        self.subscribe_refused += other.subscribe_refused;
        self.frames_sent += other.frames_sent;
        self.frames_sent_measured += other.frames_sent_measured;
        self.frames_expected += other.frames_expected;
        self.frames_delivered += other.frames_delivered;
        self.bytes_delivered += other.bytes_delivered;
        self.groups_reset += other.groups_reset;
        self.groups_lost += other.groups_lost;
        self.frames_gap += other.frames_gap;
        self.longest_gap_ns = self.longest_gap_ns.max(other.longest_gap_ns);
        self.flood_datagrams += other.flood_datagrams;
        self.send_drops += other.send_drops;
        self.datagrams_received += other.datagrams_received;
        self.datagrams_sent += other.datagrams_sent;
        self.bytes_received += other.bytes_received;
        let _ = self.latency_us.add(&other.latency_us);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// The final figures, as printed and as written to `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub transport: TransportKind,
    pub relay: String,
    pub threads: usize,
    pub connections: u64,
    pub connected: u64,
    pub setup_done: u64,
    pub connect_failed: u64,
    pub alive_at_end: u64,
    pub closed_early: u64,
    pub subscriptions_started: u64,
    pub subscribe_refused: u64,
    pub fps: f64,
    pub frame_bytes: usize,
    pub measured_secs: f64,
    /// The measured window, wall-clock unix milliseconds.
    pub window_start_unix_ms: u64,
    pub window_end_unix_ms: u64,
    pub bytes_delivered: u64,
    pub frames_sent: u64,
    pub frames_sent_measured: u64,
    pub frames_expected: u64,
    pub frames_delivered: u64,
    pub delivery_pct: f64,
    pub mb_delivered: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub groups_reset: u64,
    pub groups_lost: u64,
    pub frames_gap: u64,
    /// The longest a subscriber went without a frame in the measured window.
    pub longest_gap_ms: f64,
    /// Fake Initials sent by the flood (`--flood-ports`), and their rate.
    pub flood_datagrams: u64,
    pub flood_per_sec: f64,
    pub send_drops: u64,
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Mean received UDP payload, bytes (whole run): how full the relay's packets are.
    pub mean_datagram_bytes: f64,
    pub cpu_user_secs: f64,
    pub cpu_sys_secs: f64,
    /// CPU seconds over wall seconds of the whole run, as a percentage of one core.
    pub cpu_pct_of_core: f64,
    pub wall_secs: f64,
    /// The relay's own cost over the window (`--relay-pid`).
    pub relay_process: Option<RelayCost>,
    /// Relay CPU seconds per delivered GB (10^9 bytes) of payload.
    pub relay_cpu_s_per_gb: Option<f64>,
    /// (Relay RSS peak in the window - RSS before the run) / planned connections.
    pub relay_rss_per_connection_bytes: Option<f64>,
}

/// Inputs to [`Report::new`] that are not counters.
pub struct RunInfo {
    pub workload: Workload,
    pub transport: TransportKind,
    pub relay: String,
    pub threads: usize,
    pub connections: u64,
    pub fps: f64,
    pub frame_bytes: usize,
    pub measured_secs: f64,
    pub window_unix_ms: (u64, u64),
    pub cpu: (f64, f64),
    pub wall_secs: f64,
    pub relay_process: Option<RelayCost>,
}

impl Report {
    pub fn new(info: RunInfo, s: &Stats) -> Self {
        let ms = |q: f64| {
            if s.latency_us.is_empty() {
                0.0
            } else {
                s.latency_us.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let delivery_pct = if s.frames_expected == 0 {
            0.0
        } else {
            100.0 * s.frames_delivered as f64 / s.frames_expected as f64
        };
        Self {
            workload: info.workload,
            transport: info.transport,
            relay: info.relay,
            threads: info.threads,
            connections: info.connections,
            connected: s.connected,
            setup_done: s.setup_done,
            connect_failed: s.connect_failed,
            alive_at_end: s.alive_at_end,
            closed_early: s.closed_early,
            subscriptions_started: s.subscribed,
            subscribe_refused: s.subscribe_refused,
            fps: info.fps,
            frame_bytes: info.frame_bytes,
            measured_secs: info.measured_secs,
            window_start_unix_ms: info.window_unix_ms.0,
            window_end_unix_ms: info.window_unix_ms.1,
            bytes_delivered: s.bytes_delivered,
            frames_sent: s.frames_sent,
            frames_sent_measured: s.frames_sent_measured,
            frames_expected: s.frames_expected,
            frames_delivered: s.frames_delivered,
            delivery_pct,
            mb_delivered: s.bytes_delivered as f64 / 1e6,
            latency_p50_ms: ms(0.5),
            latency_p90_ms: ms(0.9),
            latency_p99_ms: ms(0.99),
            latency_max_ms: if s.latency_us.is_empty() {
                0.0
            } else {
                s.latency_us.max() as f64 / 1000.0
            },
            groups_reset: s.groups_reset,
            groups_lost: s.groups_lost,
            frames_gap: s.frames_gap,
            longest_gap_ms: s.longest_gap_ns as f64 / 1e6,
            flood_datagrams: s.flood_datagrams,
            flood_per_sec: if info.measured_secs > 0.0 {
                s.flood_datagrams as f64 / info.measured_secs
            } else {
                0.0
            },
            send_drops: s.send_drops,
            datagrams_received: s.datagrams_received,
            datagrams_sent: s.datagrams_sent,
            mean_datagram_bytes: if s.datagrams_received == 0 {
                0.0
            } else {
                s.bytes_received as f64 / s.datagrams_received as f64
            },
            cpu_user_secs: info.cpu.0,
            cpu_sys_secs: info.cpu.1,
            cpu_pct_of_core: if info.wall_secs > 0.0 {
                100.0 * (info.cpu.0 + info.cpu.1) / info.wall_secs
            } else {
                0.0
            },
            wall_secs: info.wall_secs,
            relay_cpu_s_per_gb: info
                .relay_process
                .as_ref()
                .filter(|_| s.bytes_delivered > 0)
                .map(|r| r.cpu_secs / (s.bytes_delivered as f64 / 1e9)),
            relay_rss_per_connection_bytes: info.relay_process.as_ref().map(|r| {
                (r.rss_peak_bytes as f64 - r.rss_start_bytes as f64)
                    / info.connections.max(1) as f64
            }),
            relay_process: info.relay_process,
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let rows: Vec<(&str, String)> = vec![
            ("workload", format!("{:?}", self.workload).to_lowercase()),
            ("transport", format!("{:?}", self.transport).to_lowercase()),
            ("relay", self.relay.clone()),
            ("threads", self.threads.to_string()),
            (
                "connections",
                format!(
                    "{} planned, {} connected, {} setup, {} failed",
                    self.connections, self.connected, self.setup_done, self.connect_failed
                ),
            ),
            (
                "alive at end",
                format!("{} ({} closed early)", self.alive_at_end, self.closed_early),
            ),
            (
                "subscriptions",
                format!(
                    "{} started, {} refused attempts",
                    self.subscriptions_started, self.subscribe_refused
                ),
            ),
            (
                "load",
                format!(
                    "{} fps x {} B, {:.1} s measured",
                    self.fps, self.frame_bytes, self.measured_secs
                ),
            ),
            (
                "frames sent",
                format!(
                    "{} ({} measured)",
                    self.frames_sent, self.frames_sent_measured
                ),
            ),
            ("frames expected", self.frames_expected.to_string()),
            ("frames delivered", self.frames_delivered.to_string()),
            (
                "delivery",
                if self.frames_expected == 0 {
                    "n/a (no frames expected)".to_string()
                } else {
                    format!("{:.2} %", self.delivery_pct)
                },
            ),
            ("MB delivered", format!("{:.2}", self.mb_delivered)),
            (
                "latency ms",
                format!(
                    "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                    self.latency_p50_ms,
                    self.latency_p90_ms,
                    self.latency_p99_ms,
                    self.latency_max_ms
                ),
            ),
            (
                "groups",
                format!(
                    "{} reset, {} lost, {} frame gaps",
                    self.groups_reset, self.groups_lost, self.frames_gap
                ),
            ),
            (
                "longest gap",
                format!(
                    "{:.1} ms (one subscriber without a frame)",
                    self.longest_gap_ms
                ),
            ),
            (
                "flood",
                format!(
                    "{} fake Initials ({:.0}/s)",
                    self.flood_datagrams, self.flood_per_sec
                ),
            ),
            ("send drops", self.send_drops.to_string()),
            (
                "datagrams in",
                format!(
                    "{} (mean {:.0} B)",
                    self.datagrams_received, self.mean_datagram_bytes
                ),
            ),
            (
                "datagrams out",
                format!(
                    "{} ({:.2} per datagram in; a quinn receiver ACKs about every second)",
                    self.datagrams_sent,
                    self.datagrams_sent as f64 / self.datagrams_received.max(1) as f64
                ),
            ),
            (
                "generator cpu",
                format!(
                    "{:.2} s user + {:.2} s sys over {:.1} s = {:.1} % of one core",
                    self.cpu_user_secs, self.cpu_sys_secs, self.wall_secs, self.cpu_pct_of_core
                ),
            ),
        ];
        let mut rows = rows;
        if let Some(r) = &self.relay_process {
            let per_gb = self
                .relay_cpu_s_per_gb
                .map_or("n/a".to_string(), |v| format!("{v:.2} s per GB delivered"));
            rows.push((
                "relay cpu",
                format!(
                    "{:.2} s over {:.1} s = {:.1} % of one core, {per_gb}",
                    r.cpu_secs,
                    r.window_secs,
                    r.cpu_pct()
                ),
            ));
            rows.push((
                "relay rss",
                format!(
                    "{:.1} MiB peak, {:.1} MiB before, {:.1} KiB per connection",
                    r.rss_peak_bytes as f64 / 1048576.0,
                    r.rss_start_bytes as f64 / 1048576.0,
                    self.relay_rss_per_connection_bytes.unwrap_or(0.0) / 1024.0
                ),
            ));
            rows.push((
                "relay udp drops",
                r.udp_drops.map_or("n/a".to_string(), |d| {
                    format!("{d} datagrams (its receive buffer overflowed)")
                }),
            ));
        }
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<18} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_report() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        a.frames_expected = 4;
        a.record(2_000_000, 100);
        b.record(4_000_000, 100);
        a.merge(&b);
        let info = RunInfo {
            workload: Workload::Fanout,
            transport: TransportKind::Quic,
            relay: "x".into(),
            threads: 1,
            connections: 2,
            fps: 30.0,
            frame_bytes: 100,
            measured_secs: 1.0,
            window_unix_ms: (1_000, 2_000),
            cpu: (0.5, 0.5),
            wall_secs: 2.0,
            relay_process: Some(RelayCost {
                pid: 1,
                cpu_secs: 0.25,
                window_secs: 1.0,
                rss_start_bytes: 1 << 20,
                rss_peak_bytes: 3 << 20,
                udp_drops: Some(0),
            }),
        };
        let r = Report::new(info, &a);
        assert_eq!(r.frames_delivered, 2);
        assert_eq!(r.delivery_pct, 50.0);
        assert_eq!(r.cpu_pct_of_core, 50.0);
        assert_eq!(
            (r.window_start_unix_ms, r.window_end_unix_ms),
            (1_000, 2_000)
        );
        assert_eq!(r.bytes_delivered, 200);
        assert!((r.latency_max_ms - 4.0).abs() < 0.01);
        assert!(r.table().contains("delivery"));
        // 0.25 CPU s for 200 bytes: 1.25e6 s per GB; 2 MiB over 2 connections.
        assert!((r.relay_cpu_s_per_gb.unwrap() - 1.25e6).abs() < 1.0);
        assert_eq!(r.relay_rss_per_connection_bytes, Some(1048576.0));
        assert!(r.table().contains("25.0 % of one core"));
    }
}

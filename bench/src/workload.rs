//! The run plan: which connections exist, what each publishes and subscribes to, when each
//! is started (the ramp), and the run's timeline (warmup, measured window, drain, deadline).

use crate::args::{Args, Workload};
use crate::clock::now_ns;
use std::time::{Duration, Instant};

/// One published track and how many subscribers the plan gives it.
#[derive(Debug, Clone)]
pub struct TrackSpec {
    /// Broadcast path relative to the session root.
    pub broadcast: String,
    pub track: String,
    /// Subscribers the plan points at this track (the delivery target per frame).
    pub subscribers: u64,
    /// One frame per group (chat) instead of `--group-secs` groups.
    pub one_frame_groups: bool,
}

/// One connection of the plan.
#[derive(Debug, Clone, Copy)]
pub struct ConnSpec {
    /// Index into [`Plan::tracks`] of the track this connection publishes.
    pub publish: Option<usize>,
    /// Index into [`Plan::tracks`] of the track this connection subscribes to.
    pub subscribe: Option<usize>,
    /// When to start the handshake, after the run's start.
    pub start: Duration,
}

/// Everything the workers need to know about the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub tracks: Vec<TrackSpec>,
    pub conns: Vec<ConnSpec>,
    pub fps: f64,
    pub frame_bytes: usize,
    pub group_secs: f64,
}

impl Plan {
    /// Builds the plan for `args`; broadcast names carry `tag` so runs never collide.
    pub fn new(args: &Args, tag: &str) -> Self {
        let cli = &args.cli;
        let mut tracks = Vec::new();
        let mut conns = Vec::new();
        let media = |name: String, subscribers: usize| TrackSpec {
            broadcast: name,
            track: "video".into(),
            subscribers: subscribers as u64,
            one_frame_groups: false,
        };
        match cli.workload {
            Workload::Fanout | Workload::Broadcasts => {
                let count = if cli.workload == Workload::Fanout {
                    1
                } else {
                    cli.broadcasts
                };
                for b in 0..count {
                    tracks.push(media(format!("bench-{tag}/b{b}"), cli.subscribers));
                    conns.push(ConnSpec {
                        publish: Some(b),
                        subscribe: None,
                        start: Duration::ZERO,
                    });
                }
                for s in 0..cli.subscribers {
                    for b in 0..count {
                        let _ = s;
                        conns.push(ConnSpec {
                            publish: None,
                            subscribe: Some(b),
                            start: Duration::ZERO,
                        });
                    }
                }
            }
            Workload::Chat => {
                let users = cli.users;
                for u in 0..users {
                    tracks.push(TrackSpec {
                        broadcast: format!("bench-{tag}/u{u}"),
                        track: "chat".into(),
                        subscribers: 0,
                        one_frame_groups: true,
                    });
                }
                for u in 0..users {
                    // 1:1 pairs; an odd last user talks to user 0.
                    let partner = if u ^ 1 < users { u ^ 1 } else { 0 };
                    let subscribe = (partner != u).then_some(partner);
                    if let Some(p) = subscribe {
                        tracks[p].subscribers += 1;
                    }
                    conns.push(ConnSpec {
                        publish: Some(u),
                        subscribe,
                        start: Duration::ZERO,
                    });
                }
            }
            Workload::Idle => {
                for _ in 0..cli.connections {
                    conns.push(ConnSpec {
                        publish: None,
                        subscribe: None,
                        start: Duration::ZERO,
                    });
                }
            }
        }
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.start = Duration::from_secs_f64(i as f64 / cli.ramp);
        }
        Self {
            workload: cli.workload,
            tracks,
            conns,
            fps: args.fps,
            frame_bytes: args.frame_bytes,
            group_secs: cli.group_secs,
        }
    }

    /// How long starting every connection takes.
    pub fn ramp_time(&self) -> Duration {
        self.conns.last().map_or(Duration::ZERO, |c| c.start)
    }
}

/// The run's phases, as instants (for timers) and as CLOCK_MONOTONIC nanoseconds (for frame
/// stamps: a frame counts when its send time falls in `[measure_start_ns, measure_end_ns)`).
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub start: Instant,
    pub measure_start: Instant,
    pub measure_end: Instant,
    pub measure_start_ns: u64,
    pub measure_end_ns: u64,
    /// The window in wall-clock unix milliseconds, for tools sampling the relay meanwhile.
    pub measure_start_unix_ms: u64,
    pub measure_end_unix_ms: u64,
    /// Publishers stop at `measure_end`; receivers keep counting until here.
    pub drain_end: Instant,
    /// Everything is closed by here.
    pub deadline: Instant,
}

/// Frames may still arrive this long after the window.
pub const DRAIN: Duration = Duration::from_millis(1500);
/// Time for close frames to go out.
pub const CLOSE: Duration = Duration::from_millis(500);

impl Timeline {
    /// The measured window starts after `warmup`, or a second after the last connection was
    /// started if the ramp takes longer.
    pub fn new(args: &Args, plan: &Plan) -> Self {
        let start = Instant::now();
        let start_ns = now_ns();
        let start_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let lead = args
            .cli
            .warmup
            .max(plan.ramp_time() + Duration::from_secs(1));
        let measure_start = start + lead;
        let measure_end = measure_start + args.cli.duration;
        let drain_end = measure_end + DRAIN;
        Self {
            start,
            measure_start,
            measure_end,
            measure_start_ns: start_ns + lead.as_nanos() as u64,
            measure_end_ns: start_ns + (lead + args.cli.duration).as_nanos() as u64,
            measure_start_unix_ms: start_unix_ms + lead.as_millis() as u64,
            measure_end_unix_ms: start_unix_ms + (lead + args.cli.duration).as_millis() as u64,
            drain_end,
            deadline: drain_end + CLOSE,
        }
    }

    /// Whether a frame sent at `ns` is in the measured window.
    pub fn measured(&self, ns: u64) -> bool {
        (self.measure_start_ns..self.measure_end_ns).contains(&ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::Parser;

    fn plan(argv: &[&str]) -> Plan {
        let mut full = vec!["moq-bench"];
        full.extend_from_slice(argv);
        let args = Args::from_cli(Cli::parse_from(full)).unwrap();
        Plan::new(&args, "t")
    }

    #[test]
    fn chat_pairs() {
        let p = plan(&["--workload", "chat", "--users", "5"]);
        assert_eq!(p.conns.len(), 5);
        assert_eq!(p.conns[0].subscribe, Some(1));
        assert_eq!(p.conns[1].subscribe, Some(0));
        assert_eq!(p.conns[4].subscribe, Some(0));
        assert_eq!(p.tracks[0].subscribers, 2);
        assert_eq!(p.tracks[4].subscribers, 0);
    }

    #[test]
    fn broadcasts() {
        let p = plan(&[
            "--workload",
            "broadcasts",
            "--broadcasts",
            "3",
            "--subscribers",
            "2",
        ]);
        assert_eq!(p.conns.len(), 9);
        assert_eq!(p.tracks.len(), 3);
        assert!(p.conns[..3].iter().all(|c| c.publish.is_some()));
        assert!(p.tracks.iter().all(|t| t.subscribers == 2));
    }
}

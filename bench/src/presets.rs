//! The named workloads of the performance goals (issue 5), one definition shared by
//! `moq-bench --preset`, `cargo bench --bench e2e` and `scripts/bench-compare`.

/// A named workload: `moq-bench` flags that a command line may still override.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    pub flags: &'static [&'static str],
}

/// 1 Mbps: 30 fps of 4 KB frames, 2 s groups.
const MBPS_1: [&str; 6] = ["--fps", "30", "--frame-bytes", "4096", "--group-secs", "2"];
/// 5 Mbps: 30 fps of 20 KB frames, 2 s groups.
const MBPS_5: [&str; 6] = ["--fps", "30", "--frame-bytes", "20480", "--group-secs", "2"];

macro_rules! fanout {
    ($name:literal, $about:literal, $n:literal, $rate:ident) => {
        Preset {
            name: $name,
            about: $about,
            flags: &[
                "--workload",
                "fanout",
                "--subscribers",
                $n,
                $rate[0],
                $rate[1],
                $rate[2],
                $rate[3],
                $rate[4],
                $rate[5],
            ],
        }
    };
}

/// 1 Mbps to 50 subscribers while `--flood-ports 64` flood the relay with `$kind` Initials.
macro_rules! flood {
    ($name:literal, $about:literal, $kind:literal) => {
        Preset {
            name: $name,
            about: $about,
            flags: &[
                "--workload",
                "fanout",
                "--subscribers",
                "50",
                MBPS_1[0],
                MBPS_1[1],
                MBPS_1[2],
                MBPS_1[3],
                MBPS_1[4],
                MBPS_1[5],
                "--flood-ports",
                "64",
                "--flood-kind",
                $kind,
            ],
        }
    };
}

/// Every preset, in the order the goals list them.
pub const PRESETS: &[Preset] = &[
    fanout!(
        "fanout-1m-100",
        "1 track at 1 Mbps to 100 subscribers",
        "100",
        MBPS_1
    ),
    fanout!(
        "fanout-1m-500",
        "1 track at 1 Mbps to 500 subscribers",
        "500",
        MBPS_1
    ),
    fanout!(
        "fanout-1m-1000",
        "1 track at 1 Mbps to 1000 subscribers",
        "1000",
        MBPS_1
    ),
    fanout!(
        "fanout-5m-100",
        "1 track at 5 Mbps to 100 subscribers",
        "100",
        MBPS_5
    ),
    fanout!(
        "fanout-5m-250",
        "1 track at 5 Mbps to 250 subscribers",
        "250",
        MBPS_5
    ),
    Preset {
        name: "broadcasts-100x5",
        about: "100 broadcasts at 1 Mbps, 5 subscribers each",
        flags: &[
            "--workload",
            "broadcasts",
            "--broadcasts",
            "100",
            "--subscribers",
            "5",
            "--fps",
            "30",
            "--frame-bytes",
            "4096",
            "--group-secs",
            "2",
        ],
    },
    Preset {
        name: "chat-250",
        about: "250 users in 1:1 chats, 10 one-frame groups/s of 200 B each",
        flags: &["--workload", "chat", "--users", "250"],
    },
    Preset {
        name: "chat-1000",
        about: "1000 users in 1:1 chats, 10 one-frame groups/s of 200 B each",
        flags: &["--workload", "chat", "--users", "1000"],
    },
    flood!(
        "flood-fanout",
        "1 Mbps to 50 subscribers while real client Initials flood the relay (longest gap)",
        "encrypted"
    ),
    flood!(
        "flood-forged-fanout",
        "1 Mbps to 50 subscribers while Initials of random bytes flood the relay (longest gap)",
        "forged"
    ),
    Preset {
        name: "idle-2000",
        about: "2000 connections that finish SETUP and stay idle (memory per connection)",
        flags: &["--workload", "idle", "--connections", "2000"],
    },
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// `argv` with every `--preset NAME` (or `--preset=NAME`) replaced by the preset's flags,
/// placed right after the program name so that flags given on the command line win.
pub fn expand(argv: Vec<String>) -> Result<Vec<String>, String> {
    let mut chosen = Vec::new();
    let mut rest = Vec::new();
    let mut args = argv.into_iter();
    let program = args.next().unwrap_or_else(|| "moq-bench".into());
    while let Some(arg) = args.next() {
        let name = if arg == "--preset" {
            Some(
                args.next()
                    .ok_or("--preset needs a name (see --list-presets)")?,
            )
        } else {
            arg.strip_prefix("--preset=").map(str::to_string)
        };
        match name {
            Some(name) => {
                let preset = find(&name)
                    .ok_or_else(|| format!("unknown preset {name:?} (see --list-presets)"))?;
                chosen.extend(preset.flags.iter().map(|f| f.to_string()));
            }
            None => rest.push(arg),
        }
    }
    let mut out = vec![program];
    out.extend(chosen);
    out.extend(rest);
    Ok(out)
}

/// One line per preset: name, description, flags.
pub fn listing() -> String {
    PRESETS
        .iter()
        .map(|p| format!("{:<17} {:<66} {}\n", p.name, p.about, p.flags.join(" ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Args, Cli};
    use clap::Parser;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_preset_parses() {
        for p in PRESETS {
            let argv = expand(strings(&["moq-bench", "--preset", p.name])).unwrap();
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            Args::from_cli(cli).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
    }

    #[test]
    fn command_line_flags_override_the_preset() {
        let argv = expand(strings(&[
            "moq-bench",
            "--subscribers",
            "7",
            "--preset=fanout-1m-500",
        ]))
        .unwrap();
        let args = Args::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap();
        assert_eq!(args.cli.subscribers, 7);
        assert_eq!(args.frame_bytes, 4096);
    }

    #[test]
    fn unknown_and_missing_names_are_errors() {
        assert!(expand(strings(&["moq-bench", "--preset", "nope"])).is_err());
        assert!(expand(strings(&["moq-bench", "--preset"])).is_err());
    }
}

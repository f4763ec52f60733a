//! Attacks through the log: a stalled stdout reader, packet-driven log lines.

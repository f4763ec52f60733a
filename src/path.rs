//! Broadcast paths: normalization and segment-aware prefix rules (PROTOCOL.md §2.2).

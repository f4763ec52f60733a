//! Thread-per-core runtime for the relay.

//! Attacks through media: large frames, growing groups, announce floods.

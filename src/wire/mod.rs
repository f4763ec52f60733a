//! The moq-lite wire codec, sans-IO: pure functions over byte buffers.

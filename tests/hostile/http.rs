//! Attacks on the HTTP and WebSocket listener: slow sockets, slot exhaustion.

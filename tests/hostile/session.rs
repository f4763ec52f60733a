//! Attacks on sessions: no SETUP or CONNECT, partial messages, stream and datagram floods.

//! Links to other relays, built from the same endpoint (dialing) and sessions (both roles)
//! as client connections. Today: explicit peers ([`peers`]), each dialed over raw QUIC and
//! kept up. Root and edge registration build on the same links.

pub mod peers;

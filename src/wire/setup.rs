//! SETUP, the one message of the lite-05 Setup uni stream (type 0x1), PROTOCOL.md §3.1:
//! `Length | ParamCount (i) | ParamCount × { ParamID (i) | ParamLen (i) | Value (b) }`.
//!
//! The parameters we know are decoded into typed fields; unknown ids are ignored, as the
//! spec requires (Rust clients send Cost and Hop on lite-05 too). We encode only the fields
//! that differ from their defaults, in id order.

use super::codec::{put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// The most parameters a SETUP may carry.
pub const MAX_PARAMETERS: u64 = 64;

const PROBE: u64 = 0x1;
const PATH: u64 = 0x2;
const ROLE: u64 = 0x3;
const COST: u64 = 0x4;
const HOP: u64 = 0x5;

/// What the sender offers on a Probe stream (parameter 0x1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeLevel {
    /// No probing (0, or absent).
    #[default]
    Off,
    /// It reports bitrate and RTT (1).
    Report,
    /// It can also raise the bitrate on request (2; higher values read as this).
    Increase,
}

/// What the client intends to do on the session (parameter 0x3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Publish and subscribe (absent, 0, or any unknown value).
    #[default]
    Both,
    /// Publish only (1).
    Publisher,
    /// Subscribe only (2).
    Subscriber,
}

/// A SETUP message. Build ours with struct update syntax, e.g.
/// `Setup { hop: 0x1234, ..Setup::default() }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    pub probe: ProbeLevel,
    /// The client's URL path and `?query` (raw QUIC and QMux/TCP only), exactly as sent: it
    /// is not normalized, since it may carry a `jwt` query.
    pub path: Option<String>,
    pub role: Role,
    /// The sender's link price (meaningful from lite-06 on).
    pub cost: Option<u64>,
    /// The sender's hop id; 0 means none, and is not sent.
    pub hop: u64,
}

impl Message for Setup {
    const NAME: &'static str = "SETUP";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 => false,
            Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut params: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut put = |id, value: Option<u64>| -> Result<(), EncodeError> {
            if let Some(value) = value {
                let mut bytes = Vec::new();
                put_varint(&mut bytes, value)?;
                params.push((id, bytes));
            }
            Ok(())
        };
        put(PROBE, self.probe.code())?;
        put(ROLE, self.role.code())?;
        put(COST, self.cost)?;
        put(HOP, Some(self.hop).filter(|&hop| hop != 0))?;
        if let Some(path) = &self.path {
            params.push((PATH, path.as_bytes().to_vec()));
        }
        params.sort_by_key(|(id, _)| *id);

        put_varint(buf, params.len() as u64)?;
        for (id, value) in params {
            put_varint(buf, id)?;
            put_varint(buf, value.len() as u64)?;
            buf.extend_from_slice(&value);
        }
        Ok(())
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = body.varint()?;
        if count > MAX_PARAMETERS {
            return Err(DecodeError::TooManyParameters);
        }
        let mut seen = Vec::with_capacity(count as usize);
        let mut setup = Setup::default();
        for _ in 0..count {
            let id = body.varint()?;
            if seen.contains(&id) {
                return Err(DecodeError::DuplicateParameter(id));
            }
            seen.push(id);
            let len = body.varint()?;
            let value = body.bytes(len)?;
            match id {
                PROBE => setup.probe = ProbeLevel::from_code(varint_value(value, "SETUP Probe")?),
                PATH => {
                    let path = std::str::from_utf8(value).map_err(|_| DecodeError::InvalidUtf8)?;
                    setup.path = Some(path.to_owned());
                }
                ROLE => setup.role = Role::from_code(varint_value(value, "SETUP Role")?),
                COST => setup.cost = Some(varint_value(value, "SETUP Cost")?),
                HOP => setup.hop = varint_value(value, "SETUP Hop")?,
                _ => {}
            }
        }
        Ok(setup)
    }
}

/// A parameter value that must be exactly one varint.
fn varint_value(value: &[u8], name: &'static str) -> Result<u64, DecodeError> {
    let mut reader = Reader::whole(value);
    match (reader.varint(), reader.finish()) {
        (Ok(value), Ok(())) => Ok(value),
        _ => Err(DecodeError::InvalidValue(name)),
    }
}

impl ProbeLevel {
    fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Off,
            1 => Self::Report,
            _ => Self::Increase,
        }
    }

    /// The value to send; `None` for the default, which is sent as an absent parameter.
    fn code(self) -> Option<u64> {
        match self {
            Self::Off => None,
            Self::Report => Some(1),
            Self::Increase => Some(2),
        }
    }
}

impl Role {
    fn from_code(code: u64) -> Self {
        match code {
            1 => Self::Publisher,
            2 => Self::Subscriber,
            _ => Self::Both,
        }
    }

    /// The value to send; `None` for the default, which is sent as an absent parameter.
    fn code(self) -> Option<u64> {
        match self {
            Self::Both => None,
            Self::Publisher => Some(1),
            Self::Subscriber => Some(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, body_error, check_golden, check_round_trip, hex};

    const V: Version = Version::Lite05;

    #[test]
    fn golden_vectors() {
        let examples = [
            ("01 01 00", Setup::default()),
            (
                "01 05 01 05 02 52 34",
                Setup {
                    hop: 0x1234,
                    ..Setup::default()
                },
            ),
            (
                "01 08 02 01 01 01 05 02 52 34",
                Setup {
                    probe: ProbeLevel::Report,
                    hop: 0x1234,
                    ..Setup::default()
                },
            ),
            (
                "01 08 01 02 05 2f 61 6e 6f 6e",
                Setup {
                    path: Some("/anon".into()),
                    ..Setup::default()
                },
            ),
        ];
        for (wire, setup) in examples {
            check_golden(V, &setup, after_type(0x01, &hex(wire)));
        }
    }

    #[test]
    fn round_trips_every_field() {
        let setup = Setup {
            probe: ProbeLevel::Increase,
            path: Some("/anon/room?jwt=eyJ".into()),
            role: Role::Subscriber,
            cost: Some(0),
            hop: (1 << 53) - 1,
        };
        check_round_trip(V, &setup);
        check_round_trip(
            V,
            &Setup {
                role: Role::Publisher,
                path: Some(String::new()),
                ..Setup::default()
            },
        );
    }

    #[test]
    fn allows_a_setup_above_64_kib() {
        let jwt = "x".repeat(100 * 1024);
        check_round_trip(
            V,
            &Setup {
                path: Some(format!("/anon?jwt={jwt}")),
                ..Setup::default()
            },
        );
    }

    #[test]
    fn unknown_parameters_and_values_are_tolerated() {
        // Unknown id 0x7 with 3 bytes, Role 9, Probe 7, Hop 0.
        let body = hex("04 07 03 aa bb cc 03 01 09 01 01 07 05 01 00");
        let (setup, _) = Setup::decode(V, &crate::wire::testing::framed(&body)).unwrap();
        assert_eq!(
            setup,
            Setup {
                probe: ProbeLevel::Increase,
                ..Setup::default()
            }
        );
    }

    #[test]
    fn malformed_parameters() {
        let mut too_many = vec![65];
        for id in 0..65 {
            too_many.extend_from_slice(&[0x40, id, 0]);
        }
        assert_eq!(
            body_error::<Setup>(V, &too_many),
            DecodeError::TooManyParameters
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("02 05 01 01 05 01 02")),
            DecodeError::DuplicateParameter(5)
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("02 09 00 09 00")),
            DecodeError::DuplicateParameter(9),
            "duplicate unknown ids are errors too"
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("01 05 02 01 02")),
            DecodeError::InvalidValue("SETUP Hop"),
            "a varint parameter with a trailing byte"
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("01 05 01 40")),
            DecodeError::InvalidValue("SETUP Hop"),
            "a truncated varint parameter"
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("01 05 00")),
            DecodeError::InvalidValue("SETUP Hop")
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("01 02 02 c3 28")),
            DecodeError::InvalidUtf8
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("01 02 05 2f")),
            DecodeError::ShortBody
        );
        assert_eq!(
            body_error::<Setup>(V, &hex("00 00")),
            DecodeError::TrailingBytes
        );
        assert_eq!(body_error::<Setup>(V, &[]), DecodeError::ShortBody);
    }

    #[test]
    fn lite04_has_no_setup() {
        let unsupported = DecodeError::Unsupported {
            message: "SETUP",
            version: Version::Lite04,
        };
        assert_eq!(Setup::decode(Version::Lite04, &[1, 0]), Err(unsupported));
        let mut buf = Vec::new();
        assert!(Setup::default().encode(Version::Lite04, &mut buf).is_err());
        assert!(buf.is_empty());
    }
}

//! memcached's binary protocol, as far as the tests speak it: requests built from their parts,
//! responses read whole. The proxy splices binary clients to memcached (`connection/binary.rs`).

use super::servers::Client;

/// Opcodes the tests use.
pub const GET: u8 = 0x00;
pub const SET: u8 = 0x01;
pub const GETQ: u8 = 0x09;
pub const NOOP: u8 = 0x0a;
pub const SETQ: u8 = 0x11;

/// A request: the 24-byte header (magic 0x80, opcode, key length, extras length, body length,
/// opaque), then extras, key and value.
pub fn request(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    let mut r = vec![0x80, opcode];
    r.extend_from_slice(&u16::try_from(key.len()).unwrap().to_be_bytes());
    r.push(u8::try_from(extras.len()).unwrap());
    r.extend_from_slice(&[0, 0, 0]);
    let body = key.len() + extras.len() + value.len();
    r.extend_from_slice(&u32::try_from(body).unwrap().to_be_bytes());
    r.extend_from_slice(&opaque.to_be_bytes());
    r.extend_from_slice(&[0; 8]);
    r.extend_from_slice(extras);
    r.extend_from_slice(key);
    r.extend_from_slice(value);
    r
}

/// A NOOP with `opaque`.
pub fn noop(opaque: u32) -> Vec<u8> {
    request(NOOP, b"", b"", b"", opaque)
}

/// Reads one response: (opcode, status, opaque, body). Panics on anything but a whole
/// response header (a close before one included).
pub fn response(c: &mut Client) -> (u8, u16, u32, Vec<u8>) {
    let header = c.read_exact(24);
    assert!(
        header.len() == 24 && header[0] == 0x81,
        "a response header: {header:?}"
    );
    let len = u32::from_be_bytes(header[8..12].try_into().unwrap());
    let body = c.read_exact(len as usize);
    let status = u16::from_be_bytes([header[6], header[7]]);
    let opaque = u32::from_be_bytes(header[12..16].try_into().unwrap());
    (header[1], status, opaque, body)
}

//! zlib in and out for compressed pickles (`zlib.compress` / `zlib.decompress` format, RFC 1950).
//!
//! Inflation is bounded: a value that would inflate past `max_out` bytes is refused rather than
//! allocated (a zlib bomb must not take the proxy down). Sans-IO: plain byte slices in and out.
use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Why a compressed value could not be inflated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    /// The bytes are not a valid zlib stream (or it is truncated).
    #[error("not a valid zlib stream")]
    Corrupt,
    /// The inflated value would exceed the configured bound.
    #[error("inflated value exceeds {0} bytes")]
    TooLarge(usize),
}

/// Inflates a zlib stream, refusing output larger than `max_out` bytes.
///
/// # Errors
/// [`InflateError::Corrupt`] for a bad stream, [`InflateError::TooLarge`] past the bound.
pub fn inflate(src: &[u8], max_out: usize) -> Result<Vec<u8>, InflateError> {
    let mut dec = ZlibDecoder::new(src);
    let mut out = Vec::with_capacity(src.len().saturating_mul(3).min(max_out));
    let limit = u64::try_from(max_out).unwrap_or(u64::MAX).saturating_add(1);
    (&mut dec)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| InflateError::Corrupt)?;
    if out.len() > max_out {
        return Err(InflateError::TooLarge(max_out));
    }
    // Bytes after the end of the zlib stream are ignored, as Python's zlib.decompress (2.7 and
    // 3) ignores them: the client loads the pickle, so the firewall and transcoder must see it.
    Ok(out)
}

/// Deflates with zlib's default level (what `zlib.compress(data)` does in Python).
pub fn deflate(src: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(
        Vec::with_capacity(src.len() / 2 + 16),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(src);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01u.".repeat(20);
        let z = deflate(&data);
        assert!(z.len() < data.len());
        assert_eq!(inflate(&z, 1 << 20).unwrap(), data);
    }

    #[test]
    fn python_zlib_compress_output_inflates() {
        // python3 -c "import zlib; print(zlib.compress(b'hello hello hello').hex())"
        let z = [
            0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40, 0x90, 0x00, 0x3a, 0x2e,
            0x06, 0x7d,
        ];
        assert_eq!(inflate(&z, 100).unwrap(), b"hello hello hello");
    }

    #[test]
    fn bounded_and_corrupt() {
        let z = deflate(&[0u8; 10_000]);
        assert_eq!(inflate(&z, 9_999), Err(InflateError::TooLarge(9_999)));
        assert_eq!(inflate(&z, 10_000).unwrap().len(), 10_000);
        assert_eq!(inflate(b"not zlib", 100), Err(InflateError::Corrupt));
        assert_eq!(
            inflate(&z[..z.len() - 3], 100_000),
            Err(InflateError::Corrupt)
        );
        let mut trailing = z.clone();
        trailing.push(0);
        // Python's zlib.decompress ignores bytes after the stream, and so must the proxy.
        assert_eq!(
            inflate(&trailing, 100_000).unwrap(),
            inflate(&z, 100_000).unwrap()
        );
    }
}

//! Table-test helpers shared by the command files' unit tests.
use bytes::{Bytes, BytesMut};

use crate::protocol::{compose_request, parse_request, Limits, Parsed, Reject, Request};

/// Parses `input` with default limits and expects a complete request using all of it.
pub(crate) fn parse_all(input: &[u8]) -> Request {
    let buf = Bytes::copy_from_slice(input);
    match parse_request(&buf, &Limits::default()) {
        Ok(Parsed::Complete { value, consumed }) => {
            assert_eq!(consumed, input.len(), "consumed for {:?}", show(input));
            value
        }
        other => panic!("{:?}: expected complete, got {other:?}", show(input)),
    }
}

/// Expects `input` to be rejected with `reply` (None: suppressed) and `swallow`.
pub(crate) fn assert_reject(input: &[u8], reply: Option<&str>, swallow: usize) {
    match parse_all(input) {
        Request::Reject(Reject {
            reply: r,
            swallow: s,
            ..
        }) => {
            assert_eq!((r, s), (reply, swallow), "{:?}", show(input));
        }
        other => panic!("{:?}: expected reject, got {other:?}", show(input)),
    }
}

/// Parses `input` and composes it for the upstream.
pub(crate) fn upstream(input: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    compose_request(&parse_all(input), &mut dst);
    dst.to_vec()
}

/// Every strict prefix of `input` is Incomplete (no error), the whole is Complete.
pub(crate) fn assert_prefixes_incomplete(input: &[u8]) {
    for i in 0..input.len() {
        let buf = Bytes::copy_from_slice(&input[..i]);
        assert_eq!(
            parse_request(&buf, &Limits::default()),
            Ok(Parsed::Incomplete),
            "prefix {i} of {:?}",
            show(input)
        );
    }
    parse_all(input);
}

pub(crate) fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

//! Table tests for the meta commands (expected lines observed on memcached 1.6.18).
use super::*;
use crate::protocol::command::testutil::{
    assert_prefixes_incomplete, assert_reject, parse_all, upstream,
};

fn meta(input: &[u8]) -> Meta {
    match parse_all(input) {
        Request::Meta(m) => m,
        other => panic!("not meta: {other:?}"),
    }
}

#[test]
fn good_requests_strip_q() {
    let table: &[(&[u8], &[u8], bool)] = &[
        (b"mg k v\r\n", b"mg k v\r\n", false),
        (
            b"mg k v f c k s t O9 q\r\n",
            b"mg k v f c k s t O9\r\n",
            true,
        ),
        (b"mg k  v   q\r\n", b"mg k v\r\n", true),
        (b"mg bQ== b v\r\n", b"mg bQ== b v\r\n", false),
        (b"ms k 2\r\nhi\r\n", b"ms k 2\r\nhi\r\n", false),
        (
            b"ms k 2 q T0 F5 MS\r\nhi\r\n",
            b"ms k 2 T0 F5 MS\r\nhi\r\n",
            true,
        ),
        (b"ms k 0\r\n\r\n", b"ms k 0\r\n\r\n", false),
        (b"md k q C5\r\n", b"md k C5\r\n", true),
        (b"ma k q J5 v MD D2\r\n", b"ma k J5 v MD D2\r\n", true),
        // With N: q kept, and an mn behind it (see `Meta::fenced`).
        (
            b"ma k q N0 J5 v MD D2\r\n",
            b"ma k q N0 J5 v MD D2\r\nmn\r\n",
            true,
        ),
        (b"me k\r\n", b"me k\r\n", false),
        (b"mn\r\n", b"mn\r\n", false),
        (b"mn x\r\n", b"mn\r\n", false),
    ];
    for &(input, composed, quiet) in table {
        assert_eq!(
            upstream(input),
            composed,
            "{}",
            String::from_utf8_lossy(input)
        );
        if let Request::Meta(m) = parse_all(input) {
            assert_eq!(m.quiet, quiet, "{}", String::from_utf8_lossy(input));
        }
    }
}

#[test]
fn flag_errors_are_forwarded_with_q_kept() {
    // memcached answers these itself even under q; keeping q keeps the answer identical.
    for input in [
        &b"mg k q q\r\n"[..],
        b"mg k v x q\r\n",
        b"mg k T q\r\n",
        b"mg m b q\r\n",
        b"md k x q\r\n",
        b"ms k 2 Fx q\r\nhi\r\n",
    ] {
        let m = meta(input);
        assert!(!m.quiet, "{}", String::from_utf8_lossy(input));
        assert_eq!(upstream(input), input, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn preparse_matches_memcached_messages() {
    type Case<'a> = (MetaCmd, &'a [u8], &'a [&'a [u8]], Option<&'a str>);
    let table: &[Case] = &[
        (
            MetaCmd::Get,
            b"m",
            &[b"v", b"v"],
            Some("CLIENT_ERROR duplicate flag"),
        ),
        (
            MetaCmd::Get,
            b"m",
            &[b"\x80"],
            Some("CLIENT_ERROR duplicate flag"),
        ),
        (
            MetaCmd::Get,
            b"m",
            &[b"x"],
            Some("CLIENT_ERROR invalid flag"),
        ),
        (
            MetaCmd::Get,
            b"m",
            &[b"E5"],
            Some("CLIENT_ERROR invalid flag"),
        ),
        (
            MetaCmd::Get,
            b"m",
            &[b"b"],
            Some("CLIENT_ERROR error decoding key"),
        ),
        (
            MetaCmd::Set,
            b"m",
            &[b"Tx"],
            Some("CLIENT_ERROR bad token in command line format"),
        ),
        (MetaCmd::Set, b"m", &[b"F-1"], Some(BAD_FORMAT)),
        (
            MetaCmd::Set,
            b"m",
            &[b"MAB"],
            Some("CLIENT_ERROR incorrect length for M token"),
        ),
        (
            MetaCmd::Delete,
            b"m",
            &[b"x"],
            Some("CLIENT_ERROR invalid or duplicate flag"),
        ),
        (
            MetaCmd::Arith,
            b"m",
            &[b"Dx"],
            Some("CLIENT_ERROR invalid or duplicate flag"),
        ),
        (
            MetaCmd::Get,
            b"bQ==",
            &[b"b", b"v", b"P", b"L", b"h", b"l", b"u", b"N5"],
            None,
        ),
        (
            MetaCmd::Set,
            b"m",
            &[b"I", b"MZ", b"S"],
            Some("CLIENT_ERROR invalid flag"),
        ),
    ];
    for &(cmd, key, flags, want) in table {
        assert_eq!(preparse(cmd, key, flags), want, "{cmd:?} {flags:?}");
    }
    assert_eq!(
        ms_line_error(b"m", &[b"MZ"]),
        Some("CLIENT_ERROR invalid mode for ms M token")
    );
    assert_eq!(
        ms_line_error(b"m", &[&[b'O'; 40][..]]),
        Some("CLIENT_ERROR opaque token too long")
    );
}

#[test]
fn line_errors_are_rejected_locally() {
    let long = format!("mg {} v\r\n", "k".repeat(251));
    let many = format!("mg k {}\r\n", ["v"; 19].join(" "));
    let many_md = format!("md k {}\r\n", ["v"; 19].join(" "));
    let table: &[(&[u8], Option<&str>, usize)] = &[
        (b"mg\r\n", Some("ERROR"), 0),
        (b"mx\r\n", Some("ERROR"), 0),
        (b"me\r\n", Some(BAD_FORMAT), 0),
        (long.as_bytes(), Some(BAD_FORMAT), 0),
        (
            many.as_bytes(),
            Some("CLIENT_ERROR options flags are too long"),
            0,
        ),
        (
            many_md.as_bytes(),
            Some("CLIENT_ERROR options flags too long"),
            0,
        ),
        (b"ms k\r\n", Some(BAD_FORMAT), 0),
        (b"ms k x\r\n", Some(BAD_FORMAT), 0),
        (b"ms k -1\r\n", Some(BAD_FORMAT), 0),
        (b"ms k 2000000 q\r\n", Some(TOO_LARGE), 2_000_002),
        (
            b"ms k 2000000 MZ\r\n",
            Some("CLIENT_ERROR invalid mode for ms M token"),
            2_000_002,
        ),
        // memcached's item limit counts the decoded key, the flags and the item overhead:
        // 1048516 bytes fit with a one-byte key and flags 0 (checked on 1.6.18).
        (b"ms k 1048517 T0\r\n", Some(TOO_LARGE), 1_048_519),
        (b"ms k 1048513 F5\r\n", Some(TOO_LARGE), 1_048_515),
        (b"ms eA== 1048513 b F5\r\n", Some(TOO_LARGE), 1_048_515),
        (b"ms k 2 q\r\nhiX\r", Some(BAD_DATA_CHUNK), 0),
        (b"ms k 2 x\r\nhiX\r", Some("CLIENT_ERROR invalid flag"), 0),
    ];
    for &(input, reply, swallow) in table {
        assert_reject(input, reply, swallow);
    }
}

/// An `ms` whose item fits waits for its data, one byte more is refused at the line.
#[test]
fn ms_at_the_item_limit() {
    let limits = Limits::default();
    for line in [&b"ms k 1048516 T0\r\n"[..], b"ms eA== 1048512 b F5\r\n"] {
        let buf = Bytes::copy_from_slice(line);
        assert_eq!(
            crate::protocol::parse_request(&buf, &limits),
            Ok(Parsed::Incomplete)
        );
    }
}

#[test]
fn base64_keys() {
    assert_eq!(base64_decode(b"bQ==").as_deref(), Some(&b"m"[..]));
    assert_eq!(base64_decode(b"Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
    assert_eq!(base64_decode(b"m"), None);
    assert_eq!(
        meta(b"mg Zm9v b v\r\n").decoded_key().as_deref(),
        Some(&b"foo"[..])
    );
    assert_eq!(
        meta(b"mg foo v\r\n").decoded_key().as_deref(),
        Some(&b"foo"[..])
    );
}

#[test]
fn prefixes_are_incomplete() {
    assert_prefixes_incomplete(b"ms k 5 T0 q\r\nhello\r\n");
    assert_prefixes_incomplete(b"mg k v f c q\r\n");
    assert_prefixes_incomplete(b"mn\r\n");
}

/// A meta line that would go upstream longer than `MAX_UPSTREAM_LINE` has its flags written
/// short, each read by memcached as it reads the original: numbers in decimal, a number that
/// does not parse as `x` (same error), `O` past its limit kept too long, other flags cut to
/// three bytes. Shorter lines go as sent.
#[test]
fn long_meta_lines_go_upstream_short() {
    let pad = |flag: &str, arg: &str| format!("{flag}{}{arg}", "0".repeat(2100));
    let cases: Vec<(String, &[u8])> = vec![
        (format!("mg k v {}\r\n", pad("T", "5")), b"mg k v T5\r\n"),
        (format!("mg k v {}\r\n", pad("T-", "5")), b"mg k v T-5\r\n"),
        (format!("mg k {} v\r\n", pad("N", "30")), b"mg k N30 v\r\n"),
        (format!("mg k R{}\r\n", "9".repeat(2100)), b"mg k Rx\r\n"),
        (
            format!("mg k v T{}\r\n", "x".repeat(2100)),
            b"mg k v Tx\r\n",
        ),
        (
            format!(
                "ms k 2 {} {}\r\nhi\r\n",
                pad("F", "4294967297"),
                pad("C", "7")
            ),
            b"ms k 2 F1 C7\r\nhi\r\n",
        ),
        (
            format!("ma k {} {}\r\n", pad("D", "2"), pad("J", "10")),
            b"ma k D2 J10\r\n",
        ),
        (format!("md k {}\r\n", pad("C", "")), b"md k C0\r\n"),
        (
            format!("mg k v{} O1\r\n", "v".repeat(2100)),
            b"mg k vvv O1\r\n",
        ),
        (
            format!("mg k v O{}\r\n", "o".repeat(2100)),
            b"mg k v Ooooooooooooooooooooooooooooooooo\r\n",
        ),
        (
            format!("ms k 1 M{}\r\nx\r\n", "S".repeat(2100)),
            b"ms k 1 MSS\r\nx\r\n",
        ),
        (format!("me k {}\r\n", "b".repeat(2100)), b"me k bbb\r\n"),
        (
            format!("me k b {}\r\n", "x".repeat(2100)),
            b"me k b xxx\r\n",
        ),
    ];
    for (input, composed) in &cases {
        assert_eq!(
            String::from_utf8_lossy(&upstream(input.as_bytes())),
            String::from_utf8_lossy(composed),
            "{}",
            &input[..40]
        );
    }
    // Under the limit (with room for an ms size of 10 digits): as sent.
    let near = format!("mg k v T{}5\r\n", "0".repeat(2020));
    assert!(near.len() + 11 <= MAX_UPSTREAM_LINE);
    assert_eq!(upstream(near.as_bytes()), near.as_bytes());
}

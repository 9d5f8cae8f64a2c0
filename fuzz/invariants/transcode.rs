//! Invariants of the pickle transcoder and the firewall, checked on any input.
//!
//! Shared verbatim by the cargo-fuzz target (`fuzz/fuzz_targets/transcode.rs`) and by the stable
//! replay test (`tests/fuzz_replay.rs`, through `#[path]`), so a corpus entry checks the same
//! properties in both. Panics (assertion failures) are the report; no I/O.

use bytes::Bytes;
use picklebridge::firewall::Firewall;
use picklebridge::pickle::{
    analyze, transcode, Outcome, Policy, Py2Text, Py2Utc, Py3Str, Runtime, Transcoded,
};

/// The policy a fuzz input selects with its first byte.
pub fn policy_for(selector: u8) -> Policy {
    let target = if selector & 1 == 0 {
        Runtime::Py2
    } else {
        Runtime::Py3
    };
    let mut policy = Policy::for_target(target);
    policy.py2_text = if selector & 2 == 0 {
        Py2Text::Keep
    } else {
        Py2Text::Utf8
    };
    policy.py3_str = match (selector >> 2) % 3 {
        0 => Py3Str::Utf8OrBytes,
        1 => Py3Str::Bytes,
        _ => Py3Str::Latin1,
    };
    policy.py2_utc = if selector & 0x40 == 0 {
        Py2Utc::None
    } else {
        Py2Utc::Pytz
    };
    // The store policy's check (bits 4 and 5 both set; they also pick `py3_str` above).
    policy.lossless_for_py3 = selector & 0x30 == 0x30;
    // Small limits now and then, so the limit paths are exercised by short inputs too.
    if selector & 0x80 != 0 {
        policy.limits.max_depth = 8;
        policy.limits.max_stack = 64;
        policy.limits.max_memo = 16;
        policy.limits.max_output = 256;
    }
    policy
}

/// Checks every transcoder invariant for one fuzz input: byte 0 selects the policy, the rest is
/// the pickle.
pub fn check_transcode(data: &[u8]) {
    let Some((&selector, pickle)) = data.split_first() else {
        return;
    };
    let policy = policy_for(selector);
    let src = Bytes::copy_from_slice(pickle);
    let first = transcode(&src, &policy);
    check_outcome(&src, &policy, &first);

    let firewall = Firewall::default();
    // Judging never panics, whatever the summary says.
    let _ = firewall.judge(&first);
    if let Outcome::Rewritten(out) = &first.outcome {
        let again = transcode(out, &policy);
        assert_eq!(
            again.outcome,
            Outcome::Unchanged,
            "transcoding the output again for {:?} is not a no-op",
            policy.target
        );
        // The rewrite must not introduce a global the firewall denies.
        let before = first
            .summary
            .as_ref()
            .map(|s| firewall.check(&s.globals).is_some());
        let after = again
            .summary
            .as_ref()
            .map(|s| firewall.check(&s.globals).cloned());
        if before == Some(false) {
            assert_eq!(after, Some(None), "rewrite introduced a denied global");
        }
    }
}

fn check_outcome(src: &Bytes, policy: &Policy, transcoded: &Transcoded) {
    match &transcoded.outcome {
        Outcome::Unchanged => {
            assert!(transcoded.summary.is_some(), "Unchanged without a summary");
        }
        Outcome::Rewritten(out) => {
            assert_ne!(out, src, "Rewritten with bytes equal to the input");
            assert!(
                out.len() <= policy.limits.max_output,
                "output of {} bytes over max_output {}",
                out.len(),
                policy.limits.max_output
            );
            let summary = match analyze(out) {
                Ok(summary) => summary,
                Err(e) => panic!("rewritten output does not re-parse: {e}"),
            };
            if policy.target == Runtime::Py2 {
                assert!(
                    summary.max_protocol <= 2,
                    "py2 output uses protocol {} opcodes",
                    summary.max_protocol
                );
                assert!(
                    summary.declared_protocol.unwrap_or(0) <= 2,
                    "py2 output declares protocol {:?}",
                    summary.declared_protocol
                );
            }
        }
        Outcome::Refused(_) => {}
    }
}

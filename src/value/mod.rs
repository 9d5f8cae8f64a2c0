//! What sits around a pickle inside a memcache value: the client flag bits that mark a pickle
//! ([`flags`]), the zlib layer some clients add ([`compress`]), and the mismatch kinds a value
//! has for its reader ([`mismatch`]). [`transcode_value`] runs one value through all of it:
//! classify by flags, inflate, transcode (or only analyze), deflate again. Sans-IO.
//!
//! Principle 1 lives here: whatever goes wrong, the result is either the original bytes or a
//! complete rewrite, never a partial one.
use bytes::Bytes;

use crate::pickle::{self, Outcome, Policy, Reason, Summary};

pub mod bare;
pub mod compress;
pub mod flags;
pub mod mismatch;

pub use bare::{convert_bare, BareConversion};
pub use flags::{Envelope, Flags, ValueFlags};
pub use mismatch::Mismatch;

/// Why a pickled value was forwarded unchanged, or (the zlib reasons) a compressed bare string
/// served as stored because it could not be judged (a closed set: used as a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The transcoder refused it.
    Pickle(Reason),
    /// The zlib flag is set but the bytes are not a zlib stream.
    ZlibCorrupt,
    /// The value would inflate past `limits.max_inflated`.
    InflateTooLarge,
    /// The rewritten value would exceed `limits.item_size`.
    TooLarge,
}

impl Refusal {
    /// The metric label (the transcoder's reasons plus the envelope's own).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Pickle(r) => r.as_str(),
            Refusal::ZlibCorrupt => "zlib_corrupt",
            Refusal::InflateTooLarge => "inflate_too_large",
            Refusal::TooLarge => "too_large",
        }
    }
}

impl From<compress::InflateError> for Refusal {
    fn from(e: compress::InflateError) -> Self {
        match e {
            compress::InflateError::Corrupt => Refusal::ZlibCorrupt,
            compress::InflateError::TooLarge(_) => Refusal::InflateTooLarge,
        }
    }
}

/// What to do with one value.
#[derive(Clone, Copy, Debug)]
pub struct ValueJob<'a> {
    /// Flag bits of the route.
    pub flags: ValueFlags,
    /// Transcoder policy (its `target` is the reader, or the store target).
    pub policy: &'a Policy,
    /// `false` in observe mode: analyze and report, never rewrite.
    pub rewrite: bool,
    /// Largest inflated pickle.
    pub max_inflated: usize,
    /// Largest rewritten value (after deflating again); `usize::MAX` for no limit.
    pub max_output: usize,
}

/// The result of [`transcode_value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueOutcome {
    /// Not a pickle by its flags: untouched, not looked at.
    NotPickle,
    /// A pickle that needs no change (or observe mode): forward the original bytes.
    Unchanged,
    /// The rewritten value (deflated again when it was compressed).
    Rewritten(Bytes),
    /// Could not be converted with certainty: forward the original bytes.
    Refused(Refusal),
}

/// [`ValueOutcome`] plus what the transcoder saw.
#[derive(Clone, Debug)]
pub struct ValueResult {
    /// The decision.
    pub outcome: ValueOutcome,
    /// What the pickle contains; `None` when not a pickle or unparseable.
    pub summary: Option<Summary>,
    /// Whether the value was zlib-compressed.
    pub compressed: bool,
}

/// Classifies, inflates, transcodes (or analyzes) and deflates one value.
pub fn transcode_value(data: &Bytes, flags: Flags, job: &ValueJob<'_>) -> ValueResult {
    let envelope = job.flags.classify(flags);
    let compressed = envelope == Envelope::ZlibPickle;
    let done = |outcome, summary| ValueResult {
        outcome,
        summary,
        compressed,
    };
    let pickle = match envelope {
        Envelope::Plain => return done(ValueOutcome::NotPickle, None),
        Envelope::Pickle => data.clone(),
        Envelope::ZlibPickle => match compress::inflate(data, job.max_inflated) {
            Ok(v) => Bytes::from(v),
            Err(e) => return done(ValueOutcome::Refused(e.into()), None),
        },
    };
    if !job.rewrite {
        return done(ValueOutcome::Unchanged, pickle::analyze(&pickle).ok());
    }
    let t = pickle::transcode(&pickle, job.policy);
    let outcome = match t.outcome {
        Outcome::Unchanged => ValueOutcome::Unchanged,
        Outcome::Refused(r) => ValueOutcome::Refused(Refusal::Pickle(r)),
        Outcome::Rewritten(new) => {
            let new = if compressed {
                Bytes::from(compress::deflate(&new))
            } else {
                new
            };
            if new.len() > job.max_output {
                ValueOutcome::Refused(Refusal::TooLarge)
            } else {
                ValueOutcome::Rewritten(new)
            }
        }
    };
    done(outcome, t.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::Runtime;

    fn job(policy: &Policy, rewrite: bool) -> ValueJob<'_> {
        ValueJob {
            flags: ValueFlags::default(),
            policy,
            rewrite,
            max_inflated: 1 << 20,
            max_output: 1 << 20,
        }
    }

    #[test]
    fn plain_values_are_not_looked_at() {
        let p = Policy::for_target(Runtime::Py2);
        let r = transcode_value(
            &Bytes::from_static(b"\x80\x04junk"),
            Flags(0),
            &job(&p, true),
        );
        assert_eq!(r.outcome, ValueOutcome::NotPickle);
        assert!(r.summary.is_none());
    }

    #[test]
    fn corrupt_and_oversized_zlib_are_refused() {
        let p = Policy::for_target(Runtime::Py3);
        let r = transcode_value(&Bytes::from_static(b"nope"), Flags(9), &job(&p, true));
        assert_eq!(r.outcome, ValueOutcome::Refused(Refusal::ZlibCorrupt));
        let big = Bytes::from(compress::deflate(&vec![b'x'; 2 << 20]));
        let r = transcode_value(&big, Flags(9), &job(&p, true));
        assert_eq!(r.outcome, ValueOutcome::Refused(Refusal::InflateTooLarge));
        assert_eq!(Refusal::InflateTooLarge.as_str(), "inflate_too_large");
    }

    #[test]
    fn observe_never_rewrites() {
        // pickle.dumps({'a': 1}, protocol=4) from CPython 3
        let v = Bytes::from_static(
            b"\x80\x04\x95\n\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.",
        );
        let p = Policy::for_target(Runtime::Py2);
        let r = transcode_value(&v, Flags(1), &job(&p, false));
        assert_eq!(r.outcome, ValueOutcome::Unchanged);
        let z = Bytes::from(compress::deflate(&v));
        let r = transcode_value(&z, Flags(9), &job(&p, false));
        assert_eq!(r.outcome, ValueOutcome::Unchanged);
        assert!(r.compressed);
    }
}

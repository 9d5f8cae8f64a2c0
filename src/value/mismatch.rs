//! Mismatches: what would break when a reader of one runtime loads a value as stored. Derived
//! from the transcoder's [`Summary`] and the reader's runtime; counted in `transcode` and
//! `observe` routes, so an `observe` route alone sizes the migration. Sans-IO.
use crate::pickle::{Runtime, Summary};

/// A way a stored value does not fit its reader (a closed set: used as a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// Protocol > 2 fetched by a Py2 reader: `ValueError: unsupported pickle protocol`.
    ProtocolTooNew,
    /// A py2 `str` with non-ASCII bytes fetched by Py3: `UnicodeDecodeError`.
    Py2StrNonAscii,
    /// A py2 `str` holding binary state (datetime & co) fetched by Py3: `UnicodeDecodeError`.
    Py2BinaryPayload,
    /// Py3 text fetched by Py2: loads, but as `unicode` where Py2 code may expect `str`.
    Py3TextToPy2,
    /// A global that does not exist in Python 2, fetched by Py2: `ImportError`/`AttributeError`.
    Py3OnlyGlobal,
    /// A global that does not exist in Python 3, fetched by Py3: `ModuleNotFoundError`/
    /// `AttributeError`.
    Py2OnlyGlobal,
}

impl Mismatch {
    /// Every kind.
    pub const ALL: &'static [Mismatch] = &[
        Mismatch::ProtocolTooNew,
        Mismatch::Py2StrNonAscii,
        Mismatch::Py2BinaryPayload,
        Mismatch::Py3TextToPy2,
        Mismatch::Py3OnlyGlobal,
        Mismatch::Py2OnlyGlobal,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::ProtocolTooNew => "protocol_too_new",
            Mismatch::Py2StrNonAscii => "py2_str_non_ascii",
            Mismatch::Py2BinaryPayload => "py2_binary_payload",
            Mismatch::Py3TextToPy2 => "py3_text_to_py2",
            Mismatch::Py3OnlyGlobal => "py3_only_global",
            Mismatch::Py2OnlyGlobal => "py2_only_global",
        }
    }

    /// Whether this mismatch makes `pickle.loads` fail in the reader (rather than load a value
    /// of a different type).
    pub fn breaks_loading(self) -> bool {
        !matches!(self, Mismatch::Py3TextToPy2)
    }

    /// The mismatches of a value with `summary` read by `reader`.
    pub fn of(summary: &Summary, reader: Runtime) -> impl Iterator<Item = Mismatch> {
        let proto = summary
            .max_protocol
            .max(summary.declared_protocol.unwrap_or(0));
        let candidates = match reader {
            Runtime::Py2 => [
                (proto > 2, Mismatch::ProtocolTooNew),
                (summary.py3_text, Mismatch::Py3TextToPy2),
                (summary.py3_only_global, Mismatch::Py3OnlyGlobal),
            ],
            Runtime::Py3 => [
                (summary.py2_str_non_ascii, Mismatch::Py2StrNonAscii),
                (summary.py2_binary_state, Mismatch::Py2BinaryPayload),
                (summary.py2_only_global, Mismatch::Py2OnlyGlobal),
            ],
        };
        // Each kind is a candidate once (the filler never hits): counted per fetched value,
        // without allocating.
        candidates
            .into_iter()
            .filter_map(|(hit, kind)| hit.then_some(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::Writer;

    fn summary() -> Summary {
        Summary {
            declared_protocol: Some(2),
            max_protocol: 2,
            writer: Writer::Unknown,
            py2_str_non_ascii: false,
            py2_binary_state: false,
            py3_text: false,
            py3_only_global: false,
            py2_only_global: false,
            globals: Default::default(),
            globals_complete: true,
        }
    }

    #[test]
    fn kinds_by_reader() {
        let mut s = summary();
        assert_eq!(Mismatch::of(&s, Runtime::Py2).count(), 0);
        s.declared_protocol = Some(4);
        s.py3_text = true;
        s.py2_str_non_ascii = true;
        let py2: Vec<_> = Mismatch::of(&s, Runtime::Py2).collect();
        assert_eq!(py2, [Mismatch::ProtocolTooNew, Mismatch::Py3TextToPy2]);
        let py3: Vec<_> = Mismatch::of(&s, Runtime::Py3).collect();
        assert_eq!(py3, [Mismatch::Py2StrNonAscii]);
        s.py2_binary_state = true;
        s.py3_only_global = true;
        assert_eq!(Mismatch::of(&s, Runtime::Py3).count(), 2);
        assert_eq!(Mismatch::of(&s, Runtime::Py2).count(), 3);
        s.py2_only_global = true;
        let py3: Vec<_> = Mismatch::of(&s, Runtime::Py3).collect();
        assert_eq!(py3.last(), Some(&Mismatch::Py2OnlyGlobal));
        assert_eq!(Mismatch::of(&s, Runtime::Py2).count(), 3);
        assert!(Mismatch::Py2OnlyGlobal.breaks_loading());
        assert!(!Mismatch::Py3TextToPy2.breaks_loading());
        assert!(Mismatch::ProtocolTooNew.breaks_loading());
        let labels: std::collections::HashSet<_> =
            Mismatch::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(labels.len(), Mismatch::ALL.len());
    }
}

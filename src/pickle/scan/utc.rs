//! Pass 1 under `py2_utc = pytz`: the UTC `tzinfo` of an aware datetime, converted to the
//! reader's own. Python 3 pickles `datetime.timezone.utc` as `timezone(timedelta(0, 0, 0))`
//! (`timezone.__getinitargs__`); Python 2 with pytz pickles `pytz.utc` as `pytz._UTC()`
//! (`_UTC.__reduce__`). Only those exact calls are converted:
//! - for a Python 2 reader, every use of `datetime.timezone` must be such a call (any other
//!   use, another offset or a name refuses the value `py3_only_global`, as without the policy);
//! - for a Python 3 reader, all calls of `pytz._UTC` are converted, or none when the class has
//!   any other use (the value then goes as it is). Whoever wrote the value: a value the proxy
//!   stored for both runtimes (`store_protocol = 2`) holds Python 2's `pytz.utc` and Python 3
//!   evidence (`_codecs.encode`) at once.
//!
//! Other uses: a DUP or GET of the class, state (BUILD) given to a converted object, and a value
//! that also names the reader's own UTC (or, for a Python 2 reader, anything of pytz, whose
//! `_p('UTC')` is `pytz.utc` too), where two UTC objects distinct for the writer would become
//! one (two dict keys, one).

use super::*;

/// What the scan learns under `py2_utc = pytz` (nothing without it).
#[derive(Default)]
pub(super) struct UtcScan {
    /// The policy is `py2_utc = pytz`.
    pub(super) on: bool,
    /// The global table index of the UTC class to convert (see [`Ann::UtcGlobal`]).
    pub(super) class: Option<u32>,
    /// How many ops pushed it (each must be one converted call).
    pub(super) pushes: usize,
    /// (global op, REDUCE) of each call converted.
    pub(super) calls: Vec<(usize, usize)>,
    /// For a Python 3 reader: another use leaves all the calls as they are.
    pub(super) blocked: bool,
    /// The reader's own UTC is named too (see [`Scanner::is_target_utc`]).
    pub(super) target_named: bool,
}

impl UtcScan {
    pub(super) fn new(policy: Option<&Policy>) -> UtcScan {
        UtcScan {
            on: policy.is_some_and(|p| p.py2_utc == Py2Utc::Pytz),
            ..UtcScan::default()
        }
    }
}

impl<'a, 'p> Scanner<'a, 'p> {
    /// Whether `module.name` is the UTC class the policy converts for this reader.
    pub(super) fn is_utc_class(&self, m: &str, n: &str) -> bool {
        match self.target().filter(|_| self.utc.on) {
            Some(Runtime::Py2) => (m, n) == ("datetime", "timezone"),
            Some(Runtime::Py3) => (m, n) == ("pytz", "_UTC"),
            None => false,
        }
    }

    /// Whether `module.name` is (a way to) the UTC object the conversion writes, for this
    /// reader: a value holding both would have two UTC objects become one (dict keys, set
    /// members, identity), so neither is converted then.
    pub(super) fn is_target_utc(&self, m: &str, n: &str) -> bool {
        match self.target().filter(|_| self.utc.on) {
            Some(Runtime::Py2) => m == "pytz",
            Some(Runtime::Py3) => {
                (m, n) == ("datetime", "timezone") || (m == "pytz" && n != "_UTC")
            }
            None => false,
        }
    }

    /// A use of a converted call's result or of the class other than the plain call: refused
    /// for a Python 2 reader, no conversion for a Python 3 reader.
    pub(super) fn utc_other_use(&mut self) -> Result<(), TranscodeError> {
        if self.target() == Some(Runtime::Py2) {
            return Err(self.m.err(ErrorKind::Py3OnlyGlobal));
        }
        self.utc.blocked = true;
        Ok(())
    }

    /// An op pushed global `idx` (each push must be one converted call).
    pub(super) fn utc_pushed(&mut self, idx: u32) {
        if self.utc.class == Some(idx) {
            self.utc.pushes += 1;
        }
    }

    /// A GET fetched global `idx`: the class itself is not converted, only its calls.
    pub(super) fn utc_fetched(&mut self, idx: u32) -> Result<(), TranscodeError> {
        if self.utc.class != Some(idx) {
            return Ok(());
        }
        self.utc_other_use()
    }

    /// REDUCE under the policy: a call of the UTC class, or (for a Python 2 reader)
    /// `timedelta(0, 0, 0)`, noted wherever it is (`timezone.utc.utcoffset(None)` is the very
    /// object its pickle fetches). Returns the result's slot when the REDUCE is one of those.
    pub(super) fn utc_reduce(
        &mut self,
        o: &Op<'a>,
        func: Slot,
        args: Slot,
    ) -> Result<Option<Slot>, TranscodeError> {
        let Slot::Global { idx, via } = func else {
            return Ok(None);
        };
        let py2 = self.target() == Some(Runtime::Py2);
        if self.utc.class == Some(idx) {
            let plain = if py2 {
                self.tuple_of(args).is_some_and(|t| t == [Slot::ZeroDelta])
            } else {
                // `_UTC()`, with room on the stack for the five items the Python 3 form holds
                // at once.
                let room = self
                    .policy
                    .is_some_and(|p| self.m.len() + 5 <= p.limits.max_stack);
                matches!(args, Slot::EmptyTuple { .. })
                    && matches!(self.src.get(via), Some(&(op::GLOBAL | op::STACK_GLOBAL)))
                    && room
            };
            return match (plain, py2) {
                (true, _) => {
                    self.utc.calls.push((via, o.pos));
                    Ok(Some(Slot::Utc))
                }
                (false, true) => Err(self.m.err(ErrorKind::Py3OnlyGlobal)),
                (false, false) => {
                    self.utc.blocked = true;
                    Ok(None)
                }
            };
        }
        let timedelta = self
            .globals
            .get(idx as usize)
            .is_some_and(|g| (&*g.module, &*g.name) == ("datetime", "timedelta"));
        let zero = |t: &[Slot]| t.len() == 3 && t.iter().all(|s| self.is_zero_int(s));
        if py2 && timedelta && self.tuple_of(args).is_some_and(zero) {
            return Ok(Some(Slot::ZeroDelta));
        }
        Ok(None)
    }

    /// The items of a tuple the scan kept (see `keep_tuple`).
    fn tuple_of(&self, slot: Slot) -> Option<&[Slot]> {
        let Slot::Tuple(_, id) = slot else {
            return None;
        };
        self.tuple_items(id)
    }

    /// An int op whose value is 0 (`I0`, BININT1 / BININT2 / BININT 0; not `I00`, which is
    /// False).
    fn is_zero_int(&self, slot: &Slot) -> bool {
        let Slot::Scalar { pos } = *slot else {
            return false;
        };
        let Some(o) = self.op_at(pos) else {
            return false;
        };
        match o.code {
            op::BININT1 | op::BININT2 | op::BININT => o.arg.iter().all(|&b| b == 0),
            op::INT => o.arg == b"0",
            _ => false,
        }
    }

    /// Plans the conversion (or refuses the value) once the whole pickle is read.
    pub(super) fn plan_utc(&mut self) -> Result<(), TranscodeError> {
        if self.utc.class.is_none() {
            return Ok(());
        }
        let all = self.utc.calls.len() == self.utc.pushes && !self.utc.target_named;
        if self.target() == Some(Runtime::Py2) {
            if !all {
                return Err(TranscodeError::new(ErrorKind::Py3OnlyGlobal, 0, None));
            }
        } else if !all || self.utc.blocked {
            self.utc.calls.clear();
            return Ok(());
        }
        for &(global, call) in &self.utc.calls {
            self.anns.push((global, Ann::UtcGlobal));
            self.anns.push((call, Ann::UtcCall));
        }
        Ok(())
    }
}

//! Pass 1, `getattr` as CPython 3.11+ pickles an enum member: `getattr(Color, 'RED')`
//! (`Enum.__reduce_ex__`), a REDUCE of `builtins.getattr` with a class and a constant name.
//! That call reaches what protocol 4 would spell as the dotted name `Color.RED`, so when every
//! use of `getattr` in a value is such a call, the summary lists those dotted names instead of
//! `builtins.getattr`, and the firewall judges them as it judges any dotted name (each part
//! must look like a class: `Color.RED` passes, `Path.write_text` does not; a denied module or a
//! `__dunder__` part is denied). Any other use (a call with anything else, `getattr` kept as a
//! value, given to INST/OBJ/NEWOBJ, DUP, more walks than the summary lists) leaves
//! `builtins.getattr` listed, which the default deny list denies.

use super::*;

/// What the scan learns of `getattr` uses.
#[derive(Default)]
pub(super) struct WalkScan {
    /// How many ops pushed `getattr` (a GLOBAL, STACK_GLOBAL, INST, GET or DUP of it): each
    /// must be consumed by one walk.
    pub(super) pushes: usize,
    /// How many REDUCEs were walks.
    pub(super) calls: usize,
    /// The dotted names walked to, distinct, in first-seen order.
    pub(super) names: Vec<Global>,
}

impl<'a, 'p> Scanner<'a, 'p> {
    /// An op pushed global `idx`: counted when it is `getattr`.
    pub(super) fn walk_pushed(&mut self, idx: u32) {
        if self.globals.get(idx as usize).is_some_and(|g| g.getattr) {
            self.walks.pushes += 1;
        }
    }

    /// REDUCE of `func` with `args`: notes a walk when `func` is `getattr` and `args` a class
    /// (a global) and a constant ASCII name. True when the class is a nested one
    /// (`Outer.Inner`), which a Python 2 reader's rewrite writes as a walk itself
    /// (`downgrade.rs`): this walk would then start from a walk's result.
    pub(super) fn walk_reduce(&mut self, func: Slot, args: Slot) -> bool {
        let Slot::Global { idx, .. } = func else {
            return false;
        };
        if !self.globals.get(idx as usize).is_some_and(|g| g.getattr) {
            return false;
        }
        let Slot::Tuple([Elem::Global { idx: class, .. }, name], id) = args else {
            return false;
        };
        if self.tuple_items(id).map(<[Slot]>::len) != Some(2) {
            return false;
        }
        let name = match name {
            Elem::Text { src, via } => self.str_of(&Slot::Text { src, via }),
            Elem::Py2Str { src, via } => self.str_of(&Slot::Py2Str { src, via }),
            _ => None,
        };
        let (Some(name), Some(class)) = (name, self.globals.get(class as usize)) else {
            return false;
        };
        if name.is_empty() || !name.is_ascii() {
            return false;
        }
        let nested = class.name.contains('.');
        let walked = Global::new(class.module.as_str(), format!("{}.{name}", class.name));
        if !self.walks.names.contains(&walked) {
            if self.walks.names.len() >= MAX_SUMMARY_GLOBALS {
                return false;
            }
            self.walks.names.push(walked);
        }
        self.walks.calls += 1;
        nested
    }

    /// Once the whole pickle is read: when every push of `getattr` was a walk, the summary
    /// lists the names walked to in its place.
    pub(super) fn list_walks(&mut self) {
        if self.walks.pushes == 0 || self.walks.calls != self.walks.pushes {
            return;
        }
        let getattr = |g: &Global| {
            matches!(
                (&*g.module, &*g.name),
                ("builtins" | "__builtin__", "getattr")
            )
        };
        self.summary_globals.retain(|g| !getattr(g));
        for name in std::mem::take(&mut self.walks.names) {
            if self.summary_globals.contains(&name) {
                continue;
            }
            if self.summary_globals.len() < MAX_SUMMARY_GLOBALS {
                self.summary_globals.push(name);
            } else {
                self.summary.globals_complete = false;
            }
        }
    }
}

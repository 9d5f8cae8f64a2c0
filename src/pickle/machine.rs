//! The stack/MARK/memo discipline of the unpickling machine, over a caller-chosen slot type.
//!
//! It models only what CPython 3's `_pickle.c` Unpickler checks before it would raise: pops below
//! the topmost MARK (`Pdata_stack_underflow`), GET of an undefined memo index, PUT on an empty
//! stack, DICT or SETITEMS over an odd number of items. One check is stricter than CPython, which
//! returns the top item at STOP: STOP with anything but exactly one value and no open MARK (no
//! pickler writes that). What a slot *means* is the caller's business (`scan.rs` tags strings,
//! globals, containers); values are never built.

use super::error::{ErrorKind, TranscodeError};
use super::PickleLimits;

/// Stack + marks + memo; `S` is the caller's tag for one stack item.
#[derive(Debug)]
pub(crate) struct Machine<S> {
    stack: Vec<S>,
    /// Stack lengths at each open MARK (CPython 3's metastack).
    marks: Vec<usize>,
    /// Memo slots by index; `None` = never PUT.
    memo: Vec<Option<S>>,
    /// Number of defined memo slots (what MEMOIZE uses as the next index).
    memo_len: usize,
    limits: PickleLimits,
    /// Offset and opcode of the op being applied, for errors.
    at: (usize, u8),
}

impl<S: Clone> Machine<S> {
    /// An empty machine.
    pub(crate) fn new(limits: PickleLimits) -> Self {
        Machine {
            stack: Vec::with_capacity(16),
            marks: Vec::with_capacity(4),
            memo: Vec::with_capacity(16),
            memo_len: 0,
            limits,
            at: (0, 0),
        }
    }

    /// Sets the op that errors are reported against.
    #[inline]
    pub(crate) fn at(&mut self, pos: usize, code: u8) {
        self.at = (pos, code);
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> TranscodeError {
        TranscodeError::new(kind, self.at.0, Some(self.at.1))
    }

    #[inline]
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Items on the stack.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.stack.len()
    }

    /// Whether one more MARK could be opened (a rewrite that adds one stays within the limit).
    #[inline]
    pub(crate) fn mark_room(&self) -> bool {
        self.marks.len() < self.limits.max_depth
    }

    /// Pushes one item.
    #[inline]
    pub(crate) fn push(&mut self, s: S) -> Result<(), TranscodeError> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(self.err(ErrorKind::LimitExceeded));
        }
        self.stack.push(s);
        Ok(())
    }

    /// Pops one item above the topmost MARK.
    #[inline]
    pub(crate) fn pop(&mut self) -> Result<S, TranscodeError> {
        if self.stack.len() <= self.fence() {
            return Err(self.err(ErrorKind::StackUnderflow));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow))
    }

    /// A copy of the top item above the topmost MARK.
    #[inline]
    pub(crate) fn peek(&self) -> Result<S, TranscodeError> {
        if self.stack.len() <= self.fence() {
            return Err(self.err(ErrorKind::StackUnderflow));
        }
        self.stack
            .last()
            .cloned()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow))
    }

    /// Opens a MARK.
    pub(crate) fn mark(&mut self) -> Result<(), TranscodeError> {
        if self.marks.len() >= self.limits.max_depth {
            return Err(self.err(ErrorKind::LimitExceeded));
        }
        self.marks.push(self.stack.len());
        Ok(())
    }

    /// The items above the topmost MARK (error when there is no MARK).
    pub(crate) fn mark_items(&self) -> Result<&[S], TranscodeError> {
        let start = *self
            .marks
            .last()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow))?;
        Ok(&self.stack[start..])
    }

    /// The items above the topmost MARK as key/value pairs (DICT, SETITEMS): an odd number is
    /// refused, as CPython 3 refuses it ("odd number of items for DICT").
    pub(crate) fn mark_pairs(&self) -> Result<&[S], TranscodeError> {
        let items = self.mark_items()?;
        if items.len() % 2 != 0 {
            return Err(self.err(ErrorKind::OddItems));
        }
        Ok(items)
    }

    /// Pops the items above the topmost MARK and the MARK itself.
    pub(crate) fn pop_mark(&mut self) -> Result<(), TranscodeError> {
        let start = self
            .marks
            .pop()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow))?;
        self.stack.truncate(start);
        Ok(())
    }

    /// Whether the stack above the topmost MARK is empty (POP then pops the MARK, as CPython 3 does).
    pub(crate) fn at_fence(&self) -> bool {
        self.stack.len() <= self.fence()
    }

    /// Whether any MARK is open.
    pub(crate) fn has_mark(&self) -> bool {
        !self.marks.is_empty()
    }

    /// Stack depth (all items, across marks).
    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Number of defined memo slots (MEMOIZE's next index).
    pub(crate) fn memo_len(&self) -> usize {
        self.memo_len
    }

    /// memo[index] = top of stack.
    pub(crate) fn put(&mut self, index: u64) -> Result<(), TranscodeError> {
        let value = self.peek().map_err(|_| self.err(ErrorKind::BadMemo))?;
        self.put_value(index, value)
    }

    /// memo[index] = value.
    pub(crate) fn put_value(&mut self, index: u64, value: S) -> Result<(), TranscodeError> {
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.limits.max_memo)
            .ok_or_else(|| self.err(ErrorKind::LimitExceeded))?;
        // Writers number memo slots 0, 1, 2, ...: appending is the common case.
        if i == self.memo.len() {
            self.memo.push(Some(value));
            self.memo_len += 1;
            return Ok(());
        }
        if i > self.memo.len() {
            self.memo.resize(i + 1, None);
        }
        if self.memo[i].is_none() {
            self.memo_len += 1;
        }
        self.memo[i] = Some(value);
        Ok(())
    }

    /// memo[index], which must have been PUT.
    pub(crate) fn get(&self, index: u64) -> Result<&S, TranscodeError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i))
            .and_then(Option::as_ref)
            .ok_or_else(|| self.err(ErrorKind::BadMemo))
    }

    /// STOP: exactly one item, no open MARK.
    pub(crate) fn stop(&mut self) -> Result<S, TranscodeError> {
        if self.stack.len() != 1 || !self.marks.is_empty() {
            return Err(self.err(ErrorKind::UnbalancedStack));
        }
        self.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Machine<u8> {
        Machine::new(PickleLimits::default())
    }

    #[test]
    fn pop_below_mark_underflows() {
        let mut m = m();
        m.push(1).unwrap();
        m.mark().unwrap();
        assert_eq!(m.pop().unwrap_err().kind, ErrorKind::StackUnderflow);
        m.push(2).unwrap();
        assert_eq!(m.mark_items().unwrap(), &[2]);
        m.pop_mark().unwrap();
        assert_eq!(m.depth(), 1);
        assert_eq!(m.pop_mark().unwrap_err().kind, ErrorKind::StackUnderflow);
    }

    #[test]
    fn memo_get_of_undefined_index_is_bad_memo() {
        let mut m = m();
        assert_eq!(m.put(0).unwrap_err().kind, ErrorKind::BadMemo);
        m.push(7).unwrap();
        m.put(3).unwrap();
        assert_eq!(*m.get(3).unwrap(), 7);
        assert_eq!(m.memo_len(), 1);
        assert_eq!(m.get(2).unwrap_err().kind, ErrorKind::BadMemo);
        assert_eq!(m.get(u64::MAX).unwrap_err().kind, ErrorKind::BadMemo);
    }

    #[test]
    fn limits_refuse_instead_of_growing() {
        let limits = PickleLimits {
            max_depth: 2,
            max_stack: 2,
            max_memo: 4,
            max_output: 10,
        };
        let mut m: Machine<u8> = Machine::new(limits);
        m.push(1).unwrap();
        m.push(1).unwrap();
        assert_eq!(m.push(1).unwrap_err().kind, ErrorKind::LimitExceeded);
        m.mark().unwrap();
        m.mark().unwrap();
        assert_eq!(m.mark().unwrap_err().kind, ErrorKind::LimitExceeded);
        m.pop_mark().unwrap();
        m.pop_mark().unwrap();
        assert_eq!(m.put(4).unwrap_err().kind, ErrorKind::LimitExceeded);
    }

    #[test]
    fn stop_needs_exactly_one_item_and_no_mark() {
        let mut m = m();
        assert_eq!(m.stop().unwrap_err().kind, ErrorKind::UnbalancedStack);
        m.push(1).unwrap();
        m.push(2).unwrap();
        assert_eq!(m.stop().unwrap_err().kind, ErrorKind::UnbalancedStack);
        m.pop().unwrap();
        assert_eq!(m.stop().unwrap(), 1);
    }
}

//! Every opcode of pickle protocols 0-5: the 68 opcodes of CPython 3.11's `pickletools`, one line
//! each (byte, name, protocol that introduced it, argument kind, stack effect).
//!
//! Data only: no parsing here (see `reader.rs`). Names and protocols are those of
//! `Lib/pickletools.py`; the stack effect is `pickletools`' `stack_before`/`stack_after` reduced to
//! what the validator needs: whether the opcode pops to the topmost MARK, then how many items it
//! pops below that, and how many it pushes.

/// How an opcode's argument is encoded (pickletools `ArgumentDescriptor` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// No argument.
    None,
    /// uint1: one unsigned byte.
    U1,
    /// uint2: two bytes, little-endian unsigned.
    U2,
    /// uint4: four bytes, little-endian unsigned.
    U4,
    /// int4: four bytes, little-endian signed.
    I4,
    /// uint8: eight bytes, little-endian unsigned.
    U8,
    /// float8: eight bytes, big-endian IEEE-754.
    F8,
    /// decimalnl_short / decimalnl_long / floatnl: one ASCII line ending in `\n`.
    Line,
    /// stringnl: one `repr()`-quoted line (`'...'` or `"..."`) ending in `\n`.
    QuotedLine,
    /// stringnl_noescape_pair: two lines (`module\nname\n`).
    TwoLines,
    /// string1 / bytes1 / unicodestring1 / long1: uint1 length then that many bytes.
    Len1,
    /// string4 / long4: int4 length (negative is an error) then that many bytes.
    LenI4,
    /// bytes4 / unicodestring4: uint4 length then that many bytes.
    LenU4,
    /// bytes8 / unicodestring8 / bytearray8: uint8 length then that many bytes.
    LenU8,
}

/// Static facts about one opcode.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    /// The opcode byte.
    pub code: u8,
    /// Its `pickletools` name.
    pub name: &'static str,
    /// The protocol that introduced it.
    pub proto: u8,
    /// How its argument is encoded.
    pub arg: ArgKind,
    /// Pops everything down to (and including) the topmost MARK first.
    pub mark: bool,
    /// Items popped (after the mark, if any).
    pub pops: u8,
    /// Items pushed.
    pub pushes: u8,
}

macro_rules! opcodes {
    ($( $konst:ident = $code:expr, $proto:expr, $arg:ident, $mark:expr, $pops:expr, $pushes:expr, $doc:literal;
    )*) => {
        $(
            #[doc = $doc]
            pub const $konst: u8 = $code;
        )*
        /// The table, in `pickletools` order.
        pub const ALL: &[OpInfo] = &[$(OpInfo {
            code: $code, name: stringify!($konst), proto: $proto, arg: ArgKind::$arg,
            mark: $mark, pops: $pops, pushes: $pushes,
        }),*];
    };
}

// Hand-aligned table: rustfmt must not reflow it.
#[rustfmt::skip]
opcodes! {
    // const      = byte,  proto, arg,       mark,  pops, pushes, pickletools summary;
    INT             = b'I',  0, Line,       false, 0, 1, "push an int or bool (I00 / I01)";
    BININT          = b'J',  1, I4,         false, 0, 1, "push a four-byte signed int";
    BININT1         = b'K',  1, U1,         false, 0, 1, "push a one-byte unsigned int";
    BININT2         = b'M',  1, U2,         false, 0, 1, "push a two-byte unsigned int";
    LONG            = b'L',  0, Line,       false, 0, 1, "push a long integer in decimal (optional L suffix)";
    LONG1           = 0x8a,  2, Len1,       false, 0, 1, "push a long from < 256 bytes, two's complement LE";
    LONG4           = 0x8b,  2, LenI4,      false, 0, 1, "push a really big long";
    STRING          = b'S',  0, QuotedLine, false, 0, 1, "push a Python string object (repr-quoted)";
    BINSTRING       = b'T',  1, LenI4,      false, 0, 1, "push a Python string object, int4 length";
    SHORT_BINSTRING = b'U',  1, Len1,       false, 0, 1, "push a Python string object, uint1 length";
    BINBYTES        = b'B',  3, LenU4,      false, 0, 1, "push a Python bytes object, uint4 length";
    SHORT_BINBYTES  = b'C',  3, Len1,       false, 0, 1, "push a Python bytes object, uint1 length";
    BINBYTES8       = 0x8e,  4, LenU8,      false, 0, 1, "push a Python bytes object, uint8 length";
    BYTEARRAY8      = 0x96,  5, LenU8,      false, 0, 1, "push a Python bytearray object, uint8 length";
    NEXT_BUFFER     = 0x97,  5, None,       false, 0, 1, "push next out-of-band buffer";
    READONLY_BUFFER = 0x98,  5, None,       false, 1, 1, "make top of stack readonly";
    NONE            = b'N',  0, None,       false, 0, 1, "push None";
    NEWTRUE         = 0x88,  2, None,       false, 0, 1, "push True";
    NEWFALSE        = 0x89,  2, None,       false, 0, 1, "push False";
    UNICODE         = b'V',  0, Line,       false, 0, 1, "push a Unicode string (raw-unicode-escape line)";
    SHORT_BINUNICODE= 0x8c,  4, Len1,       false, 0, 1, "push a Unicode string, UTF-8, uint1 length";
    BINUNICODE      = b'X',  1, LenU4,      false, 0, 1, "push a Unicode string, UTF-8, uint4 length";
    BINUNICODE8     = 0x8d,  4, LenU8,      false, 0, 1, "push a Unicode string, UTF-8, uint8 length";
    FLOAT           = b'F',  0, Line,       false, 0, 1, "push a float (repr line)";
    BINFLOAT        = b'G',  1, F8,         false, 0, 1, "push a float, big-endian double";
    EMPTY_LIST      = b']',  1, None,       false, 0, 1, "push an empty list";
    APPEND          = b'a',  0, None,       false, 2, 1, "append stack top to the list below";
    APPENDS         = b'e',  1, None,       true,  1, 1, "extend the list below the mark";
    LIST            = b'l',  0, None,       true,  0, 1, "build a list from the items above the mark";
    EMPTY_TUPLE     = b')',  1, None,       false, 0, 1, "push an empty tuple";
    TUPLE           = b't',  0, None,       true,  0, 1, "build a tuple from the items above the mark";
    TUPLE1          = 0x85,  2, None,       false, 1, 1, "build a one-tuple from the top item";
    TUPLE2          = 0x86,  2, None,       false, 2, 1, "build a two-tuple from the top two items";
    TUPLE3          = 0x87,  2, None,       false, 3, 1, "build a three-tuple from the top three items";
    EMPTY_DICT      = b'}',  1, None,       false, 0, 1, "push an empty dict";
    DICT            = b'd',  0, None,       true,  0, 1, "build a dict from key/value pairs above the mark";
    SETITEM         = b's',  0, None,       false, 3, 1, "dict\\[key\\] = value";
    SETITEMS        = b'u',  1, None,       true,  1, 1, "add key/value pairs above the mark to the dict";
    EMPTY_SET       = 0x8f,  4, None,       false, 0, 1, "push an empty set";
    ADDITEMS        = 0x90,  4, None,       true,  1, 1, "add the items above the mark to the set";
    FROZENSET       = 0x91,  4, None,       true,  0, 1, "build a frozenset from the items above the mark";
    POP             = b'0',  0, None,       false, 1, 0, "discard the top item (or the topmost mark)";
    DUP             = b'2',  0, None,       false, 1, 2, "push a copy of the top item";
    MARK            = b'(',  0, None,       false, 0, 0, "push a markobject";
    POP_MARK        = b'1',  1, None,       true,  0, 0, "pop everything down to the topmost mark";
    GET             = b'g',  0, Line,       false, 0, 1, "push memo\\[n\\], n in decimal";
    BINGET          = b'h',  1, U1,         false, 0, 1, "push memo\\[n\\], uint1";
    LONG_BINGET     = b'j',  1, U4,         false, 0, 1, "push memo\\[n\\], uint4";
    PUT             = b'p',  0, Line,       false, 1, 1, "memo\\[n\\] = top, n in decimal";
    BINPUT          = b'q',  1, U1,         false, 1, 1, "memo\\[n\\] = top, uint1";
    LONG_BINPUT     = b'r',  1, U4,         false, 1, 1, "memo\\[n\\] = top, uint4";
    MEMOIZE         = 0x94,  4, None,       false, 1, 1, "memo\\[len(memo)\\] = top";
    EXT1            = 0x82,  2, U1,         false, 0, 1, "push an object from the extension registry";
    EXT2            = 0x83,  2, U2,         false, 0, 1, "push an object from the extension registry";
    EXT4            = 0x84,  2, I4,         false, 0, 1, "push an object from the extension registry";
    GLOBAL          = b'c',  0, TwoLines,   false, 0, 1, "push module.name (two lines)";
    STACK_GLOBAL    = 0x93,  4, None,       false, 2, 1, "push module.name, both str from the stack";
    REDUCE          = b'R',  0, None,       false, 2, 1, "push callable(*args)";
    BUILD           = b'b',  0, None,       false, 2, 1, "obj.__setstate__(state) or update __dict__";
    INST            = b'i',  0, TwoLines,   true,  0, 1, "build a class instance (module, name lines)";
    OBJ             = b'o',  1, None,       true,  0, 1, "build a class instance, class first above mark";
    NEWOBJ          = 0x81,  2, None,       false, 2, 1, "cls.__new__(cls, *args)";
    NEWOBJ_EX       = 0x92,  4, None,       false, 3, 1, "cls.__new__(cls, *args, **kwargs)";
    PROTO           = 0x80,  2, U1,         false, 0, 0, "identify pickle protocol";
    STOP            = b'.',  0, None,       false, 1, 0, "stop the unpickling machine";
    FRAME           = 0x95,  4, U8,         false, 0, 0, "indicate the beginning of a new frame";
    PERSID          = b'P',  0, Line,       false, 0, 1, "push a persistent object, id line";
    BINPERSID       = b'Q',  1, None,       false, 1, 1, "push a persistent object, id from the stack";
}

const fn build_index() -> [u8; 256] {
    let mut index = [u8::MAX; 256];
    let mut i = 0;
    while i < ALL.len() {
        index[ALL[i].code as usize] = i as u8;
        i += 1;
    }
    index
}

/// Byte -> position in [`ALL`], `u8::MAX` for bytes that are not opcodes.
static INDEX: [u8; 256] = build_index();

/// Looks an opcode byte up; `None` when the byte is no opcode of protocols 0-5.
pub fn info(code: u8) -> Option<&'static OpInfo> {
    ALL.get(usize::from(INDEX[usize::from(code)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_68_opcodes_of_pickletools_once_each() {
        assert_eq!(ALL.len(), 68);
        let mut seen = [false; 256];
        for op in ALL {
            assert!(!seen[usize::from(op.code)], "duplicate {}", op.name);
            seen[usize::from(op.code)] = true;
            assert_eq!(info(op.code).map(|i| i.name), Some(op.name));
            assert!(op.proto <= 5);
        }
        assert!(info(0xff).is_none());
        assert!(info(b'z').is_none());
    }

    #[test]
    fn protocol_counts_match_pickletools() {
        let count = |p| ALL.iter().filter(|o| o.proto == p).count();
        assert_eq!(
            [count(0), count(1), count(2), count(3), count(4), count(5)],
            [22, 19, 12, 2, 10, 3]
        );
    }
}

//! Opcode-level pickle transcoder. Never does I/O, never builds a Python value tree.

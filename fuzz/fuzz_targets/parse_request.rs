//! Fuzz target: `parse_request` on a pipelined stream, whole and split into chunks; see
//! `invariants/protocol.rs` for what is asserted.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../invariants/protocol.rs"]
mod protocol;

fuzz_target!(|data: &[u8]| protocol::check_parse_request(data));

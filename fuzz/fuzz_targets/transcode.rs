//! Fuzz target: the pickle transcoder and firewall. Byte 0 selects the policy, the rest is the
//! pickle; see `invariants/transcode.rs` for what is asserted.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../invariants/transcode.rs"]
mod transcode;

fuzz_target!(|data: &[u8]| transcode::check_transcode(data));

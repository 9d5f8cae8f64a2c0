//! Shared integration-test harness: real servers on free loopback ports, real interpreters,
//! bounded waits. Each integration test file uses a subset, hence the dead_code allowance.
#![allow(dead_code)]

pub mod binary;
pub mod http;
pub mod memcache_binary;
pub mod ports;
pub mod python;
pub mod servers;
pub mod tcp_queues;
pub mod wait;

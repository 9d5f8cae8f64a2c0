//! Bounded polling: never sleep blind in a test.
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns `Some`, or for at most `timeout`: `None` then.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` every 10 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, check)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

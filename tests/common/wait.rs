//! Bounded polling: never sleep blind in a test.
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns `Some`, or panics after `timeout` with `what` and
/// the elapsed time.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {:?} waiting for {what}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

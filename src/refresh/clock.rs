//! The clock of the protocol: every timestamp of a session is in Unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds (0 before 1970, `i64::MAX` far ahead).
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration in whole seconds, as an `i64` to add to or subtract from a
/// timestamp (saturating at `i64::MAX`).
pub(crate) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

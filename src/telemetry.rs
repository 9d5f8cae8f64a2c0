//! (telemetry: not yet written)

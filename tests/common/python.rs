//! Locating and running the real CPython 2.7 and 3 interpreters (not yet written).

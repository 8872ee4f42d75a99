//! (mock module; filled in by its provider work)

//! (executor module; filled in by its provider work)

//! Mock google servers (filled in by the provider work).

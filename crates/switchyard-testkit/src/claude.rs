//! Mock claude servers (filled in by the provider work).

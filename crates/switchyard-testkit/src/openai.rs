//! Mock openai servers (filled in by the provider work).

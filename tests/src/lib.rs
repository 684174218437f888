//! Helpers shared by the integration tests: reading the golden JSON files.

//! Criterion benches of tinytrain live in `benches/`.

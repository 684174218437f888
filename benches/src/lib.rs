//! Criterion benches of tinytrain live in `benches/`. This library only compiles the README's
//! Rust examples as doctests, so the README cannot drift from the API.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

//! Dense layer and digits-mlp training benches.
#![allow(missing_docs)]
fn main() {}

//! The `tinytrain-sim` command line.
fn main() {}

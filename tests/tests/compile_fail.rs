//! Compile-fail tests (trybuild): mismatched layer shapes and an optimizer sized for another
//! network do not build. The optimizer-size assert fires only when code is generated, and
//! trybuild only builds (rather than checks) when a passing case is in the same run, hence
//! `pass_matching_shapes.rs`. The expected compiler output is in `ui/*.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass_*.rs");
    t.compile_fail("ui/fail_*.rs");
    // Image layers: a wrong derived size (HO, WO, N) or mismatched CHW shapes.
    t.pass("ui/conv_pass_*.rs");
    t.compile_fail("ui/conv_fail_*.rs");
}

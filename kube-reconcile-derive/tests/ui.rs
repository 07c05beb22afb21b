//! Compile errors: each `ui/*.rs` must fail with the message and span in its `.stderr`.
//! Regenerate with `TRYBUILD=overwrite cargo test -p kube-reconcile-derive --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

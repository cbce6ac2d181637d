//! Compile-time behaviour of `#[resilient]`: every supported function shape builds, and every
//! mistake is reported where it was made, in words that say how to fix it.
//!
//! Regenerate the expected messages with `TRYBUILD=overwrite cargo test --test ui`, then read
//! each `.stderr` before committing it.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

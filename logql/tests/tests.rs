//! Integration tests: Loki's conformance scripts and log-query behaviour.

mod conformance;
mod log_queries;

/// The number of conformance evals this engine passed when last measured;
/// a lower count is a regression.
const CONFORMANCE_FLOOR: usize = 1019;

#[test]
fn loki_conformance_scripts() {
    let dir = conformance::test_dir();
    if !dir.is_dir() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance dir is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "logqltest"))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    let verbose = std::env::var_os("LOGQL_TEST_VERBOSE").is_some();
    for f in &files {
        let rep = conformance::run_file(f).unwrap_or_else(|e| panic!("conformance runner broke: {e}"));
        println!("{}: {} passed, {} failed", f.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()), rep.passed, rep.failed);
        for fl in rep.failures.iter().take(if verbose { usize::MAX } else { 5 }) {
            println!("  FAIL {fl}");
        }
        passed += rep.passed;
        failed += rep.failed;
    }
    assert!(passed + failed > 0, "no evals executed in {}", dir.display());
    println!("{passed} passed, {failed} failed");
    assert!(passed >= CONFORMANCE_FLOOR, "conformance regressed: {passed} < {CONFORMANCE_FLOOR}");
}

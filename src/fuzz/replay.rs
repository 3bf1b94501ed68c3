//! Replays the seed corpus (`fuzz/corpus/<target>/`) and the kept crash inputs
//! (`fuzz/regressions/<target>/`) through the fuzz checks, on stable, as part of
//! `cargo test`; and writes the seeds our own encoders make (an ignored test, run by hand).
//!
//! File names carry expectations: `ok-…` must be accepted, `rejected-<label>-…` refused with
//! that label (see [`Verdict`]); other names (what libFuzzer writes) only have to pass the
//! checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::{TARGETS, Verdict};

/// The largest single allocation checking one input may make. The inputs are kilobytes; a
/// decoder that reserves more because a length prefix says so is a memory amplification (the
/// fuzz runs enforce the same bound with libFuzzer's `-malloc_limit_mb`).
const MAX_ALLOCATION: usize = 64 << 20;

thread_local! {
    /// The largest allocation this thread made since the replay last reset it.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown find no thread-local to update.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

/// The system allocator, noting the largest allocation per thread (this test binary only).
struct NotingAllocator;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for NotingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for `layout` are `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`; `new_size` is the caller's to guarantee.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: NotingAllocator = NotingAllocator;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The corpus is part of the repository; keep it small.
const MAX_CORPUS_BYTES: u64 = 4 << 20;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn expectation(name: &str) -> Result<Option<Verdict>, String> {
    if name.starts_with("ok-") {
        return Ok(Some(Verdict::Accepted));
    }
    let Some(rest) = name.strip_prefix("rejected-") else {
        return Ok(None);
    };
    match rest.split_once('-') {
        Some((label, _)) if !label.is_empty() => Ok(Some(Verdict::Rejected(label.to_owned()))),
        _ => Err(format!("{name}: expected rejected-<label>-<description>")),
    }
}

#[test]
fn every_corpus_and_regression_file_passes_its_target_check() {
    let mut failures = Vec::new();
    let mut total_bytes = 0;
    for target in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target.name));
        assert!(
            seeds.len() >= 5,
            "{}: a seed corpus of at least 5 files is expected",
            target.name
        );
        let regressions = files(&fuzz_dir().join("regressions").join(target.name));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("readable corpus file");
            total_bytes += data.len() as u64;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let shown = path.strip_prefix(fuzz_dir()).unwrap_or(path).display();
            LARGEST.with(|largest| largest.set(0));
            let verdict = catch_unwind(AssertUnwindSafe(|| (target.check)(&data)));
            let largest = LARGEST.with(Cell::get);
            if largest > MAX_ALLOCATION {
                failures.push(format!("{shown}: allocated {largest} bytes at once"));
            }
            let verdict = match verdict {
                Ok(v) => v,
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(panic)");
                    failures.push(format!("{shown}: {why}"));
                    continue;
                }
            };
            match expectation(name) {
                Ok(Some(expected)) if expected != verdict => {
                    failures.push(format!("{shown}: expected {expected:?}, got {verdict:?}"));
                }
                Ok(_) => {}
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus files fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total_bytes <= MAX_CORPUS_BYTES,
        "the corpus holds {total_bytes} bytes; minimize it (cargo fuzz cmin)"
    );
}

/// Every target has a fuzz binary and a corpus folder, and nothing else is there.
#[test]
fn the_fuzz_crate_and_the_target_table_agree() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    for name in &names {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "{} is missing", bin.display());
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("manifest");
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
    for dir in ["corpus", "regressions", "fuzz_targets"] {
        // `regressions/` exists once a crash has been kept.
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            assert_eq!(dir, "regressions", "fuzz/{dir} is missing");
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            assert!(
                names.contains(&stem),
                "{} belongs to no target in hookrelay::fuzz::TARGETS",
                path.display()
            );
        }
    }
}

#[test]
fn file_names_state_their_expectation() {
    assert_eq!(expectation("ok-avro-x"), Ok(Some(Verdict::Accepted)));
    assert_eq!(
        expectation("rejected-delivery.timeout-zero.toml"),
        Ok(Some(Verdict::Rejected("delivery.timeout".into())))
    );
    assert_eq!(expectation("0f3a9c"), Ok(None));
    assert!(expectation("rejected-nolabel").is_err());
}

/// Writes the seeds made by hookrelay's own encoders and the hand-made edge cases into
/// `fuzz/corpus/`. Run after a schema or format change, then review and commit:
/// `cargo test --release --lib fuzz::replay::write_seeds -- --ignored`.
#[test]
#[ignore = "writes into the source tree; run by hand"]
fn write_seeds() {
    for (target, name, bytes) in super::seeds::all() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

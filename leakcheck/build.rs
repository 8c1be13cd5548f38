//! Decides at build time whether leakcheck may define `pthread_create` (see
//! `src/os/linux/pthread.rs`), and says so to the crate as `cfg(leakcheck_interpose)`.
//!
//! The symbol is left out where it cannot work or would do harm: without the
//! `track-all-threads` feature, off Linux/glibc, with a statically linked C runtime (no
//! `dlsym(RTLD_NEXT)` to find the real function), under Miri, and in sanitizer builds, whose
//! runtimes intercept `pthread_create` themselves (AddressSanitizer aborts when another
//! definition replaces its interceptor).

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(leakcheck_interpose)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-changed=build.rs");
    let blocker = interposer_blocker();
    // Why threads are found by census only, for the note reports give.
    let reason = blocker.as_ref().map_or("", Blocker::describe);
    println!("cargo::rustc-env=LEAKCHECK_CENSUS_REASON={reason}");
    match blocker {
        None => println!("cargo::rustc-cfg=leakcheck_interpose"),
        Some(why) => {
            // Only worth a warning when the user asked for the feature and cannot have it.
            if env::var_os("CARGO_FEATURE_TRACK_ALL_THREADS").is_some() && why != Blocker::Platform
            {
                println!(
                    "cargo::warning=leakcheck: threads are found by census only in this build: {}",
                    why.describe()
                );
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Blocker {
    FeatureOff,
    Platform,
    StaticCrt,
    Miri,
    Sanitizer,
}

impl Blocker {
    fn describe(&self) -> &'static str {
        match self {
            Blocker::FeatureOff => "the `track-all-threads` feature is off",
            Blocker::Platform => "only Linux with glibc is supported",
            Blocker::StaticCrt => "a statically linked C runtime has no `dlsym(RTLD_NEXT)`",
            Blocker::Miri => "Miri cannot run the interposer",
            Blocker::Sanitizer => {
                "a sanitizer runtime intercepts `pthread_create` itself (-Zsanitizer)"
            }
        }
    }
}

fn interposer_blocker() -> Option<Blocker> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if env::var_os("CARGO_FEATURE_TRACK_ALL_THREADS").is_none() {
        return Some(Blocker::FeatureOff);
    }
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return Some(Blocker::Platform);
    }
    if var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static")
    {
        return Some(Blocker::StaticCrt);
    }
    if env::var_os("CARGO_CFG_MIRI").is_some() {
        return Some(Blocker::Miri);
    }
    if has_sanitizer(&var("CARGO_ENCODED_RUSTFLAGS")) {
        return Some(Blocker::Sanitizer);
    }
    None
}

/// Whether the flags (separated by `\x1f`, as cargo encodes them) turn on a sanitizer:
/// `-Zsanitizer=address`, or `-Z` followed by `sanitizer=...`.
fn has_sanitizer(encoded: &str) -> bool {
    let flags: Vec<&str> = encoded.split('\x1f').collect();
    flags.iter().enumerate().any(|(i, flag)| {
        flag.starts_with("-Zsanitizer")
            || (*flag == "-Z" && flags.get(i + 1).is_some_and(|f| f.starts_with("sanitizer")))
    })
}

//! Decides two things about this build, as cfgs for the code:
//!
//! - `cfg(leakcheck_taskdump)` when tokio's task dumps are available: the `tokio` feature, built
//!   with `--cfg tokio_unstable --cfg tokio_taskdump`, on Linux, on an architecture tokio supports
//!   task dumps on. The one place that condition is written for the code (the manifest repeats it
//!   for the target-specific dependency, where a build script cannot reach).
//! - `cfg(leakcheck_interpose)` when leakcheck may define `pthread_create` (see
//!   `src/os/linux/pthread.rs`). The symbol is left out where it cannot work or would do harm:
//!   without the `track-all-threads` feature, off Linux/glibc, with a statically linked C runtime
//!   (`crt-static`, or `-static`/`-static-pie` given to the linker: no `dlsym(RTLD_NEXT)` to find
//!   the real function, so every thread creation would fail), under Miri, and in sanitizer builds
//!   (`-Zsanitizer`, `cfg(sanitize)`), whose runtimes intercept `pthread_create` themselves (AddressSanitizer aborts when another
//!   definition replaces its interceptor). Why it is left out reaches the code as
//!   `LEAKCHECK_CENSUS_REASON`, for the note reports give.

use std::env;

/// The architectures tokio's `taskdump` supports.
const TASKDUMP_ARCHES: &[&str] = &["aarch64", "x86", "x86_64", "s390x"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let has = |name: &str| env::var_os(name).is_some();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let taskdump = has("CARGO_FEATURE_TOKIO")
        && has("CARGO_CFG_TOKIO_UNSTABLE")
        && has("CARGO_CFG_TOKIO_TASKDUMP")
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && TASKDUMP_ARCHES.contains(&arch.as_str());
    if taskdump {
        println!("cargo:rustc-cfg=leakcheck_taskdump");
    }
    interposer();
}

/// Sets `cfg(leakcheck_interpose)`, or says why not.
fn interposer() {
    let blocker = interposer_blocker();
    let reason = blocker.as_ref().map_or("", Blocker::describe);
    println!("cargo:rustc-env=LEAKCHECK_CENSUS_REASON={reason}");
    match blocker {
        None => println!("cargo:rustc-cfg=leakcheck_interpose"),
        // Only worth a warning when the user asked for the feature and cannot have it.
        Some(why)
            if env::var_os("CARGO_FEATURE_TRACK_ALL_THREADS").is_some()
                && why != Blocker::Platform =>
        {
            println!(
                "cargo:warning=leakcheck: threads are found by census only in this build: {}",
                why.describe()
            );
        }
        Some(_) => {}
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
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    if var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static")
        || links_statically(&rustflags)
    {
        return Some(Blocker::StaticCrt);
    }
    if env::var_os("CARGO_CFG_MIRI").is_some() {
        return Some(Blocker::Miri);
    }
    if env::var_os("CARGO_CFG_SANITIZE").is_some() || has_sanitizer(&rustflags) {
        return Some(Blocker::Sanitizer);
    }
    None
}

/// The codegen options (`-C name=value`, or `-Cname=value`) among the encoded flags.
fn codegen_options(encoded: &str) -> Vec<&str> {
    let flags: Vec<&str> = encoded.split('\x1f').collect();
    flags
        .iter()
        .enumerate()
        .filter_map(|(i, flag)| match flag.strip_prefix("-C") {
            Some("") => flags.get(i + 1).copied(),
            Some(option) => Some(option),
            None => flag.strip_prefix("--codegen=").or_else(|| {
                (*flag == "--codegen")
                    .then(|| flags.get(i + 1).copied())
                    .flatten()
            }),
        })
        .collect()
}

/// Whether the flags ask the linker for a fully static executable (`-C link-arg=-static`,
/// `-static-pie`, or the same in `link-args`): then no `dlsym(RTLD_NEXT)` finds glibc's
/// function, and every thread creation would fail.
fn links_statically(encoded: &str) -> bool {
    const STATIC: &[&str] = &["-static", "-static-pie", "--static", "-Wl,-static"];
    codegen_options(encoded).into_iter().any(|option| {
        let args = option
            .strip_prefix("link-arg=")
            .or_else(|| option.strip_prefix("link-args="));
        args.is_some_and(|args| args.split_whitespace().any(|arg| STATIC.contains(&arg)))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(flags: &[&str]) -> String {
        flags.join("\x1f")
    }

    #[test]
    fn static_linking_is_seen_in_every_spelling() {
        for flags in [
            &["-C", "link-arg=-static"][..],
            &["-Clink-arg=-static-pie"],
            &["-C", "opt-level=2", "-Clink-args=-lm -static"],
            &["--codegen", "link-arg=-static"],
            &["--codegen=link-arg=-Wl,-static"],
        ] {
            assert!(links_statically(&encoded(flags)), "{flags:?}");
        }
        for flags in [
            &["-C", "link-arg=-lstatic_helper"][..],
            &["-Clink-arg=-Wl,--as-needed"],
            &["-C", "target-cpu=native"],
            &[""],
        ] {
            assert!(!links_statically(&encoded(flags)), "{flags:?}");
        }
    }

    #[test]
    fn sanitizers_are_seen_in_both_spellings() {
        assert!(has_sanitizer(&encoded(&["-Zsanitizer=address"])));
        assert!(has_sanitizer(&encoded(&["-Z", "sanitizer=thread"])));
        assert!(!has_sanitizer(&encoded(&["-C", "opt-level=3"])));
    }
}

//! Sets `cfg(leakcheck_taskdump)` when tokio's task dumps are available: the `tokio` feature, built
//! with `--cfg tokio_unstable --cfg tokio_taskdump`, on Linux, on an architecture tokio supports
//! task dumps on. The one place that condition is written for the code (the manifest repeats it
//! for the target-specific dependency, where a build script cannot reach).

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
}

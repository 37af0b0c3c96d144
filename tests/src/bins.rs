//! Locating the workspace's binaries.
//!
//! The binaries of other packages are not rebuilt by `cargo test` of this
//! one, so the first use in a test process runs `cargo build --bins` for
//! both (a no-op when they are fresh) in this build's profile; a stale binary
//! would test yesterday's code.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Path of `dalaba-controller`.
pub fn controller() -> PathBuf {
    bin("dalaba-controller")
}

/// Path of `dalaba-agent`.
pub fn agent() -> PathBuf {
    bin("dalaba-agent")
}

fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = target_dir();
    let path = dir.join(name);
    if std::env::var_os("DALABA_SKIP_BUILD").is_none() {
        BUILT.get_or_init(|| {
            let release = dir.ends_with("release");
            let mut cmd = std::process::Command::new(env!("CARGO"));
            // The same package and feature set as `cargo test --workspace`,
            // so this build shares its artifacts instead of rebuilding
            // crates whose features would differ.
            cmd.args(["build", "--workspace", "--all-targets"]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the binaries failed");
        });
    }
    path
}

/// `target/<profile>`, derived from the running test executable
/// (`target/<profile>/deps/<test>-<hash>`) or bench binary
/// (`target/<profile>/<bin>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe is known");
    let dir = exe.parent().expect("exe has a parent").to_path_buf();
    if dir.ends_with("deps") { dir.parent().expect("deps has a parent").to_path_buf() } else { dir }
}

//! Compiles `bpf/*.bpf.c` with the system clang into libbpf-rs skeletons in `$OUT_DIR`.

fn main() {
    println!("cargo:rerun-if-changed=bpf");
    #[cfg(feature = "xdp")]
    build_bpf();
}

#[cfg(feature = "xdp")]
fn build_bpf() {
    use std::{env, fs, path::PathBuf};
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch");
    let arch_include = format!("-I/usr/include/{arch}-linux-gnu");
    for entry in fs::read_dir("bpf").expect("bpf/ directory") {
        let src = entry.expect("bpf/ entry").path();
        let Some(name) = src.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".bpf.c") else {
            continue;
        };
        libbpf_cargo::SkeletonBuilder::new()
            .source(&src)
            .clang_args([arch_include.as_str(), "-O2", "-g", "-Wall"])
            .build_and_generate(out.join(format!("{stem}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
    }
}

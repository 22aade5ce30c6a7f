//! Build script: compiles every `bpf/*.bpf.c` with clang into a BPF object and generates its
//! libbpf-rs skeleton (`$OUT_DIR/NAME.skel.rs`, included by `src/probe`). Without the `bpf`
//! feature it does nothing, so a /proc-only build needs no clang.

fn main() {
    println!("cargo:rerun-if-changed=bpf");
    #[cfg(feature = "bpf")]
    bpf::build();
}

#[cfg(feature = "bpf")]
mod bpf {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};

    use libbpf_cargo::SkeletonBuilder;

    pub fn build() {
        let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
        let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
        let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
            "x86_64" => "x86",
            "aarch64" => "arm64",
            other => panic!("no vmlinux.h for target arch {other}: add bpf/vmlinux/<arch>/"),
        };
        let bpf_dir = manifest.join("bpf");
        let vmlinux = bpf_dir.join("vmlinux").join(arch);
        assert!(
            vmlinux.join("vmlinux.h").exists(),
            "{} is missing: generate it with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`",
            vmlinux.join("vmlinux.h").display()
        );
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&bpf_dir)
            .expect("bpf/ exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
            .collect();
        sources.sort();
        for src in sources {
            let name = stem(&src);
            let mut b = SkeletonBuilder::new();
            let mut args = vec![
                OsString::from("-I"),
                bpf_dir.clone().into_os_string(),
                OsString::from("-I"),
                vmlinux.clone().into_os_string(),
                OsString::from("-Wall"),
            ];
            // `cargo xtask dist`: no build paths in the objects' BTF line info (reproducible).
            if let Some(map) = std::env::var_os("TRIAGE_BPF_PREFIX_MAP") {
                let mut arg = OsString::from("-ffile-prefix-map=");
                arg.push(map);
                args.push(arg);
            }
            b.source(&src).clang_args(args);
            if let Some(clang) = std::env::var_os("CLANG") {
                b.clang(clang);
            }
            b.build_and_generate(out.join(format!("{name}.skel.rs")))
                .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
        }
        println!("cargo:rerun-if-env-changed=CLANG");
        println!("cargo:rerun-if-env-changed=TRIAGE_BPF_PREFIX_MAP");
    }

    fn stem(p: &Path) -> String {
        let f = p.file_name().unwrap().to_string_lossy();
        f.trim_end_matches(".bpf.c").to_string()
    }
}

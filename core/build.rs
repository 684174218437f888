//! Sets `cfg(tinytrain_dsp)` on targets whose cores have the Armv7E-M DSP extension
//! (`thumbv7em-*`: Cortex-M4 and M7), where `int8::dsp` uses `SMLAD` and `SXTB16` in inline
//! assembly. Stable Rust does not expose ARM's `dsp` target feature to `cfg`, so the target
//! name decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinytrain_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=tinytrain_dsp");
    }
}

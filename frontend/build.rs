//! Keeps the linker's relocations in the browser bundle: the splitter (`pl-wasm-split`, run by
//! `scripts/build-site.sh`) needs them to cut `#[lazy]`/`#[lazy_route]` code into chunks. This is
//! what cargo-leptos' `--split` does with `RUSTFLAGS=-Clink-args=--emit-relocs`, but only for
//! this crate's final link, so the rest of the build keeps its cache.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--emit-relocs");
    }
}

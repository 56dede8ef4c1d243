//! `pl-wasm-split <frontend.wasm> <pkg-dir> <main-out.wasm> <out-name>`
//!
//! Runs `wasm_split_cli_support::transform` exactly as cargo-leptos 0.3.7 does for `--split`
//! (`src/wasm_split_tools/mod.rs` there): the split chunks (`*.wasm`, raw, not wasm-bindgen'd)
//! and the loader `__wasm_split.______________________.js` go to `<pkg-dir>`; the main module
//! goes to `<main-out.wasm>`, to be run through `wasm-bindgen --keep-lld-exports` with
//! `--out-name <out-name>` (the loader imports `initSync` from `./<out-name>.js`). Also writes
//! `<pkg-dir>/__wasm_split_manifest.json` (split name → chunk file stems), which Leptos'
//! `HydrationScripts` reads on the server to preload the chunks a page needs.
//!
//! The CLI that `wasm_split_cli_support --features build-binary` installs (`wasm-split-cli`)
//! cannot do this: it names the loader `__wasm_split.js` (Leptos preloads the 22-underscore
//! name) and writes no manifest.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

/// The loader name Leptos' `HydrationScripts` modulepreloads when files are not hashed.
const LINK_NAME: &str = "./__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg_dir, main_out, out_name] = args.as_slice() else {
        eprintln!("usage: pl-wasm-split <frontend.wasm> <pkg-dir> <main-out.wasm> <out-name>");
        return ExitCode::from(2);
    };
    match run(input, Path::new(pkg_dir), Path::new(main_out), out_name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pl-wasm-split: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &str, pkg_dir: &Path, main_out: &Path, out_name: &str) -> Result<(), String> {
    let wasm = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let main_module = format!("./{out_name}.js");
    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = pkg_dir;
    options.main_out_path = main_out;
    options.main_module = &main_module;
    options.link_name = LINK_NAME;
    let split = wasm_split_cli_support::transform(options).map_err(|e| format!("{e:?}"))?;
    let manifest = serde_json::to_string_pretty(&split.prefetch_map).map_err(|e| e.to_string())?;
    std::fs::write(pkg_dir.join(MANIFEST), manifest).map_err(|e| e.to_string())?;
    for chunk in &split.split_modules {
        println!("{}", chunk.display());
    }
    Ok(())
}

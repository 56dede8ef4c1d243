#!/usr/bin/env python3
"""What the dashboard's first visit to each page downloads: the main WASM, the JS glue, the
chunk loader and the page's WASM chunks (from the splitter's manifest), raw and gzip -9.
Target: the WASM of a first visit <= 400 KB gzipped.

Usage: scripts/build-site.sh release && bench/bundle.py [SITE_DIR]
(default: $CARGO_TARGET_DIR/site/release, CARGO_TARGET_DIR defaulting as in the Makefile)."""

import gzip
import json
import os
import sys
from pathlib import Path

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/promptlooper/target"))
SITE = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET / "site/release"
PKG = SITE / "pkg"
NAME = "promptlooper"
BUDGET_KB = 400

# Route → the name #[lazy_route] gives its view (app/src/lazy.rs); None: in the main bundle.
ROUTES = [
    ("/setup, /login, /projects", None),
    ("/", "__home_route_view"),
    ("/projects/:id", "__project_route_view"),
    ("/projects/:id/experiments/new", "__new_experiment_route_view"),
    ("/experiments/:id", "__experiment_route_view"),
    ("/experiments/:id/edit", "__edit_experiment_route_view"),
    ("/experiments/:id/live", "__live_route_view"),
    ("/experiments/:id/compare", "__compare_route_view"),
    ("/runs/:id", "__run_route_view"),
    ("/admin", "__admin_route_view"),
]


def sizes(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, 9))


def kb(n: int) -> str:
    return f"{n / 1000:,.1f}"


def main() -> None:
    manifest = json.loads((PKG / "__wasm_split_manifest.json").read_text())
    loader = next(PKG.glob("__wasm_split.*.js"))
    main_wasm = sizes(PKG / f"{NAME}_bg.wasm")
    glue = sizes(PKG / f"{NAME}.js")
    loader_size = sizes(loader)
    css = sizes(PKG / f"{NAME}.css")
    print(f"site: {SITE}\n")
    print("| file | raw KB | gzip KB |\n| --- | --- | --- |")
    print(f"| main `{NAME}_bg.wasm` | {kb(main_wasm[0])} | {kb(main_wasm[1])} |")
    print(f"| `{NAME}.js` | {kb(glue[0])} | {kb(glue[1])} |")
    print(f"| chunk loader | {kb(loader_size[0])} | {kb(loader_size[1])} |")
    print(f"| `{NAME}.css` | {kb(css[0])} | {kb(css[1])} |")
    chunks = sorted(PKG.glob("*.wasm"), key=lambda p: p.name)
    total = [main_wasm[0], main_wasm[1]]
    for c in chunks:
        if c.name == f"{NAME}_bg.wasm":
            continue
        raw, gz = sizes(c)
        total[0] += raw
        total[1] += gz
        print(f"| `{c.name}` | {kb(raw)} | {kb(gz)} |")
    print(f"| all WASM | {kb(total[0])} | {kb(total[1])} |\n")

    print(f"| first visit to | WASM raw KB | WASM gzip KB | + JS and CSS gzip KB | within {BUDGET_KB} KB |")
    print("| --- | --- | --- | --- | --- |")
    over = False
    for route, split in ROUTES:
        modules = []
        if split:
            key = next((k for k in manifest if k.startswith(split + "_")), None)
            if key is None:
                sys.exit(f"no chunks for {split} in the manifest")
            modules = manifest[key]
        raw = main_wasm[0] + sum(sizes(PKG / f"{m}.wasm")[0] for m in modules)
        gz = main_wasm[1] + sum(sizes(PKG / f"{m}.wasm")[1] for m in modules)
        rest = glue[1] + css[1] + (loader_size[1] if split else 0)
        ok = gz <= BUDGET_KB * 1000
        over |= not ok
        print(f"| `{route}` | {kb(raw)} | **{kb(gz)}** | {kb(rest)} | {'yes' if ok else 'NO'} |")
    if over:
        print("\nA first visit is over the budget.")


if __name__ == "__main__":
    main()

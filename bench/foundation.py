#!/usr/bin/env python3
"""Foundation numbers: binary and bundle sizes, cold start to the first 200 on /health, idle RSS,
and (with --builds) clean and incremental build times. Prints a markdown table.

Usage: bench/foundation.py [--builds] [--runs N]
Needs a release build (`make build`); reads CARGO_TARGET_DIR like the Makefile.
"""
import argparse, gzip, http.client, os, shutil, statistics, subprocess, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/promptlooper/target"))
BIN = TARGET / "release/promptlooper"
SITE = TARGET / "site/release"


def first_health(port_file_env, env, timeout=20.0):
    """Starts the server, returns (seconds to first 200 on /health, process)."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(env["PORT"])
    while time.perf_counter() - start < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return time.perf_counter() - start, proc
        except OSError:
            time.sleep(0.0005)
    proc.kill()
    raise SystemExit("server did not become healthy")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(proc):
    proc.terminate()
    proc.wait(timeout=10)


def start_env(data_dir):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(data_dir), HOST="127.0.0.1", PORT=str(free_port()), MCP_PORT="0", LEPTOS_SITE_ROOT=str(SITE), RUST_LOG="warn")
    return env


def timed(cmd, env=None):
    env = env or dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--builds", action="store_true", help="also time clean and incremental builds (slow)")
    args = ap.parse_args()
    rows = []

    if args.builds:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, CARGO_TARGET_DIR=tmp)
            rows.append(("clean debug build (server)", f"{timed(['cargo', 'build', '-p', 'server'], env=env):.0f} s"))
            rows.append(("clean debug build (WASM bundle)", f"{timed(['cargo', 'build', '-p', 'frontend', '--lib', '--target', 'wasm32-unknown-unknown'], env=env):.0f} s"))
            rows.append(("clean release build (server)", f"{timed(['cargo', 'build', '--release', '-p', 'server'], env=env):.0f} s"))
        page = ROOT / "app/src/pages/projects.rs"
        for label, cmd in [("incremental debug build after editing a page (server)", ["cargo", "build", "-p", "server"]),
                           ("incremental debug build after editing a page (WASM)", ["cargo", "build", "-p", "frontend", "--lib", "--target", "wasm32-unknown-unknown"])]:
            timed(cmd)  # bring the target up to date first
            page.write_text(page.read_text() + "\n// bench edit\n")
            try:
                rows.append((label, f"{timed(cmd):.1f} s"))
            finally:
                page.write_text(page.read_text().replace("\n// bench edit\n", ""))

    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: run `make build` first")
    rows.append(("release binary size", f"{BIN.stat().st_size / 1e6:.1f} MB"))
    wasm = SITE / "pkg/promptlooper_bg.wasm"
    js = SITE / "pkg/promptlooper.js"
    if wasm.exists():
        raw = wasm.read_bytes()
        rows.append((".wasm size raw / gzip -9", f"{len(raw) / 1024:.0f} KiB / {len(gzip.compress(raw, 9)) / 1024:.0f} KiB"))
        rows.append(("JS glue raw / gzip -9", f"{js.stat().st_size / 1024:.0f} KiB / {len(gzip.compress(js.read_bytes(), 9)) / 1024:.0f} KiB"))

    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as data:
            t, proc = first_health(None, start_env(data))  # empty DATA_DIR: creates DB, migrates, makes secret
            cold.append(t)
            stop(proc)
            t, proc = first_health(None, start_env(data))  # existing database
            warm.append(t)
            stop(proc)
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    rows.append((f"cold start → first 200 /health, empty DATA_DIR (median / p95 of {args.runs})",
                 f"{statistics.median(cold) * 1000:.0f} ms / {q(cold, .95) * 1000:.0f} ms"))
    rows.append((f"start → first 200 /health, existing database (median / p95 of {args.runs})",
                 f"{statistics.median(warm) * 1000:.0f} ms / {q(warm, .95) * 1000:.0f} ms"))

    with tempfile.TemporaryDirectory() as data:
        env = start_env(data)
        _, proc = first_health(None, env)
        port = int(env["PORT"])
        for path in ["/health", "/setup", "/login", "/api/v1/openapi.json", "/pkg/promptlooper.css"]:
            for _ in range(20):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", path)
                c.getresponse().read()
        time.sleep(3)
        rows.append(("idle RSS after serving pages (SQLite)", f"{rss_kib(proc.pid) / 1024:.1f} MiB"))
        stop(proc)

    print(f"| measure | value |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nmachine: {os.cpu_count()} cores; binary {BIN}")


if __name__ == "__main__":
    main()

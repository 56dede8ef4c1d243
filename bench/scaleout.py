#!/usr/bin/env python3
"""Scale-out: `serve` plus 0–3 `worker` processes on one PostgreSQL database, a 5,000-run grid
(5 prompts × 2 models × 10 temperatures × 50 items) against the mock at 50 ms latency, with
MAX_CONCURRENT_RUNS=16 in every process. Prints runs/s per process count against the physical
limit (slots ÷ latency), and checks that every run was executed once (the mock's call count,
the sweep's progress and the runs' claim counts).

Usage: bench/scaleout.py [--workers 0,1,2,3] [--latency 50]
Needs a release build (`cargo build --release -p server`), psql and PostgreSQL (TEST_DATABASE_URL,
else scripts/ensure-postgres.sh). Each process count gets a fresh database, mock and processes.
"""
import argparse, os, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import (BIN, CONCURRENCY, Stack, free_port, make_experiment,  # noqa: E402
                    postgres_admin_url, sweep, with_database)

JWT = "scaleout-jwt-secret-" + "j" * 24
KEY = "scaleout-encryption-key-" + "k" * 24


class Scaled(Stack):
    """The sweeps bench's stack (mock + serve) plus `workers` worker processes."""

    def __init__(self, latency_ms, database_url, workers):
        os.environ.update(JWT_SECRET=JWT, ENCRYPTION_KEY=KEY)
        super().__init__(latency_ms, database_url, label=f"scaleout-{workers}")
        for i in range(workers):
            env = {k: v for k, v in os.environ.items() if k not in ("API_KEY",)}
            env.update(DATA_DIR=str(self.tmp / f"worker{i}"), DATABASE_URL=database_url, PORT=str(free_port()),
                       MAX_CONCURRENT_RUNS=str(CONCURRENCY), RUST_LOG="warn", MCP_ENABLED="false")
            self._spawn([str(BIN), "worker"], env, self.tmp / f"worker{i}.log")


def claims(url):
    out = subprocess.run(["psql", url, "-qAtX", "-c",
                          "SELECT COUNT(*) FILTER (WHERE attempts = 1), COUNT(*) FROM runs"],
                         capture_output=True, text=True, check=True)
    once, total = out.stdout.strip().split("|")
    return int(once), int(total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="0,1,2,3")
    ap.add_argument("--latency", type=int, default=50)
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: cargo build --release -p server")
    admin = postgres_admin_url()
    rows = []
    for n in [int(w) for w in args.workers.split(",")]:
        def measure(url):
            with Scaled(args.latency, url, n) as s:
                exp = make_experiment(s, 5, 10, 50, "scaleout")
                m = sweep(s, exp, 5000)
                return m, claims(url)
        m, (once, total) = with_database(admin, measure)
        slots = CONCURRENCY * (n + 1)
        limit = slots / (args.latency / 1000)
        rate = m["runs"] / m["wall"]
        rows.append((f"serve + {n} worker{'s' if n != 1 else ''}", slots, f"{rate:,.0f}", f"{limit:,.0f}",
                     f"{rate / limit:.0%}", f"{m['calls']:,}", f"{once:,} of {total:,}",
                     f"{m['wall']:.2f} s (serve CPU {m['cpu_server']:.1f} s, postgres {m['cpu_pg']:.1f} s)"))
    print("| processes | slots | runs/s | physical limit | share | mock calls | runs claimed once | wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print(f"\n5,000 runs, mock at {args.latency} ms, MAX_CONCURRENT_RUNS={CONCURRENCY} per process; "
          f"{os.cpu_count()} cores shared by every process, the mock and PostgreSQL.")


if __name__ == "__main__":
    main()

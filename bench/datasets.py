#!/usr/bin/env python3
"""Datasets at size, end to end over REST against the release `serve`, on SQLite and
PostgreSQL. Prints a markdown table with the targets and PASS/FAIL.

  1. Import 100,000 CSV rows (about 50 MB: an id, a 400-byte `text`, a `topic`, a reference)
     into a new experiment with one upload: wall clock and the server's peak RSS (VmHWM).
     Targets: <= 60 s and <= 150 MB.
  2. GET /api/v1/experiments/{id} of that experiment, 200 times: p50 / p95 (target <= 50 ms).
  3. A grid of 100,000 items x 1 configuration on the simulated provider (0 ms): runs/s and the
     server's peak RSS over the whole process (import included), against the same for 10,000
     items on a fresh server (target: <= 150 MB, and within 20 % of the 10,000-item peak).

Every measurement gets a fresh DATA_DIR and a fresh server; PostgreSQL runs each in a fresh
`pl_bench_<random>` database (TEST_DATABASE_URL, else scripts/ensure-postgres.sh).

Usage: bench/datasets.py [--rows N] [--sqlite-only]
Needs a release build (`cargo build --release -p server`); reads CARGO_TARGET_DIR like the Makefile.
"""
import argparse, http.client, json, os, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import (BIN, API_KEY, TARGET, Client, free_port, parse_time, postgres_admin_url,  # noqa: E402
                    proc_status, tail, wait_health, with_database)

TEXT = "The supplier shall deliver the goods to the buyer within thirty days of each order. " * 5


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("id,text,topic,reference\n")
        for i in range(rows):
            f.write(f"row-{i},\"{i}: {TEXT[:400]}\",topic {i % 17},answer {i}\n")
    return path.stat().st_size


class Server:
    def __init__(self, database_url=None):
        self.tmp = Path(tempfile.mkdtemp(prefix="pl-bench-datasets-"))
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEY")}
        env.update(DATA_DIR=str(self.tmp / "data"), HOST="127.0.0.1", PORT=str(self.port), MCP_PORT="0", SEED_DEMO="false",
                   API_KEY=API_KEY, RUST_LOG="warn", MAX_UPLOAD_MB="200",
                   LEPTOS_SITE_ROOT=str(TARGET / "site/release"))
        if database_url:
            env["DATABASE_URL"] = database_url
        self.log = self.tmp / "serve.log"
        import subprocess
        self.proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"))
        wait_health(self.port, self.proc, self.log)
        self.api = Client(self.port, API_KEY)

    def peak_mb(self):
        return proc_status(self.proc.pid, "VmHWM") / 1024

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)


def experiment(s):
    endpoint = s.api.ok("POST", "/api/v1/endpoints",
                        {"name": "sim", "kind": "simulated", "options": {"latency_ms": 0}})
    project = s.api.ok("POST", "/api/v1/projects", {"name": "bench"})
    return s.api.ok("POST", "/api/v1/experiments", {
        "project_id": project["id"], "name": "big",
        "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small",
                             "user": "Topic of: {{ input.text }}"}]})["id"]


def upload(s, eid, path):
    size = path.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
    start = time.perf_counter()
    with open(path, "rb") as f:
        conn.request("POST", f"/api/v1/experiments/{eid}/samples", body=f,
                     headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "text/csv",
                              "Content-Length": str(size)})
        r = conn.getresponse()
        body = json.loads(r.read())
    took = time.perf_counter() - start
    if r.status != 200:
        raise RuntimeError(f"import → {r.status}: {json.dumps(body)[:400]}")
    return took, body


def sweep(s, eid):
    s.api.ok("POST", f"/api/v1/experiments/{eid}/sweep", {"strategy": {"kind": "grid"}})
    while True:
        sw = s.api.ok("GET", f"/api/v1/experiments/{eid}/sweep")
        if sw["status"] in ("completed", "stopped"):
            break
        time.sleep(0.2)
    secs = (parse_time(sw["finished_at"]) - parse_time(sw["created_at"])).total_seconds()
    return sw["progress"]["total"], secs


def measure(label, rows, csv, database_url=None):
    out = {}
    s = Server(database_url)
    try:
        eid = experiment(s)
        took, report = upload(s, eid, csv)
        assert report["items"]["count"] == rows, report["items"]
        out["import_s"], out["import_mb"] = took, s.peak_mb()
        times = []
        for _ in range(200):
            t = time.perf_counter()
            s.api.ok("GET", f"/api/v1/experiments/{eid}")
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out["get_p50"], out["get_p95"] = statistics.median(times), times[int(len(times) * 0.95) - 1]
        t0 = time.perf_counter()
        runs, secs = sweep(s, eid)
        out["sweep_runs"], out["sweep_s"], out["sweep_wall"] = runs, secs, time.perf_counter() - t0
        out["peak_mb"] = s.peak_mb()
    except BaseException:
        print(f"{label}: server log tail:\n{tail(s.log)}", file=sys.stderr)
        raise
    finally:
        s.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sqlite-only", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pl-bench-csv-"))
    big, small = tmp / "big.csv", tmp / "small.csv"
    size = write_csv(big, args.rows)
    write_csv(small, args.rows // 10)
    print(f"CSV: {args.rows:,} rows, {size / 1e6:.1f} MB\n")
    backends = [("SQLite", None)]
    if not args.sqlite_only:
        backends.append(("PostgreSQL", postgres_admin_url()))
    rows = []
    for name, admin in backends:
        run = (lambda n, f: measure(name, n, f)) if admin is None else \
            (lambda n, f, a=admin: with_database(a, lambda url: measure(name, n, f, url)))
        big_r = run(args.rows, big)
        small_r = run(args.rows // 10, small)
        ratio = big_r["peak_mb"] / small_r["peak_mb"]
        rows += [
            (name, f"import {args.rows:,} rows ({size / 1e6:.0f} MB)", f"{big_r['import_s']:.1f} s",
             "≤ 60 s", big_r["import_s"] <= 60),
            (name, "peak RSS after the import", f"{big_r['import_mb']:.1f} MB", "≤ 150 MB", big_r["import_mb"] <= 150),
            (name, f"GET experiment ({args.rows:,} items) p50 / p95",
             f"{big_r['get_p50']:.1f} / {big_r['get_p95']:.1f} ms", "p95 ≤ 50 ms", big_r["get_p95"] <= 50),
            (name, f"grid {big_r['sweep_runs']:,} items × 1 config", f"{big_r['sweep_runs'] / big_r['sweep_s']:,.0f} runs/s "
             f"({big_r['sweep_s']:.1f} s)", "—", True),
            (name, f"grid {small_r['sweep_runs']:,} items × 1 config", f"{small_r['sweep_runs'] / small_r['sweep_s']:,.0f} runs/s "
             f"({small_r['sweep_s']:.1f} s)", "—", True),
            (name, "peak RSS, whole process: 100k vs 10k", f"{big_r['peak_mb']:.1f} vs {small_r['peak_mb']:.1f} MB "
             f"(×{ratio:.2f})", "≤ 150 MB, ≤ ×1.20", big_r["peak_mb"] <= 150 and ratio <= 1.2),
        ]
    print("| backend | measurement | result | target | |")
    print("| --- | --- | --- | --- | --- |")
    for name, what, result, target, ok in rows:
        print(f"| {name} | {what} | {result} | {target} | {'PASS' if ok else 'FAIL'} |")


if __name__ == "__main__":
    main()

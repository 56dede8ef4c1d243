#!/usr/bin/env python3
"""Endpoint rate limits across processes: `serve` + 2 `worker` processes on one PostgreSQL
database, 16 slots each, against a mock LLM that allows 120 requests in any 60 s (it answers
429 with `retry-after-ms` past that, like a hosted API). One grid sweep per endpoint setting:

  - no limit set: only the 429s teach the processes the rate (AIMD);
  - rpm 150: a limit set too high, so the 429s must bring it down;
  - rpm 120: the provider's real limit.

For each: the busiest 60 s the mock saw (every request, and the ones it let through), the 429s,
runs completed and failed, and the rate runs completed at after the first minute.

Usage: bench/ratelimit.py [--runs 360] [--only none,150,120]
Needs a build of the server (release, or PL_BIN=…/debug/promptlooper: the mock's limit, not the
server, is the bottleneck), psql and PostgreSQL (TEST_DATABASE_URL, else scripts/ensure-postgres.sh).
"""
import argparse, http.client, json, os, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import BIN, CONCURRENCY, Stack, make_experiment, postgres_admin_url, with_database  # noqa: E402

JWT = "ratelimit-jwt-secret-" + "j" * 24
KEY = "ratelimit-encryption-key-" + "k" * 24
LIMIT = 120
WORKERS = 2


class Limited(Stack):
    """Mock (120 per minute) + serve + 2 workers."""

    def __init__(self, database_url):
        os.environ.update(JWT_SECRET=JWT, ENCRYPTION_KEY=KEY)
        super().__init__(20, database_url, label="ratelimit", mock_args=["--rate-limit", str(LIMIT)])
        for i in range(WORKERS):
            env = {k: v for k, v in os.environ.items() if k not in ("API_KEY",)}
            env.update(DATA_DIR=str(self.tmp / f"worker{i}"), DATABASE_URL=database_url,
                       MAX_CONCURRENT_RUNS=str(CONCURRENCY), RUST_LOG="warn", MCP_ENABLED="false")
            self._spawn([str(BIN), "worker"], env, self.tmp / f"worker{i}.log")

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.mock_port, timeout=5)
        c.request("GET", "/mock/stats")
        return json.loads(c.getresponse().read())


def run(s, rpm, runs):
    # runs = 3 prompts × 2 models × temperatures × 10 items
    exp = make_experiment(s, 3, max(1, runs // 60), 10, "limited")
    total = 3 * 2 * max(1, runs // 60) * 10
    ep = next(e for e in s.api.ok("GET", "/api/v1/endpoints") if e["name"] == "mock-limited")
    if rpm is not None:
        s.api.ok("PUT", f"/api/v1/endpoints/{ep['id']}", {"rpm": rpm})
    t0 = time.perf_counter()
    sw = s.api.ok("POST", f"/api/v1/experiments/{exp}/sweep", {"strategy": {"kind": "grid"}})
    path = f"/api/v1/sweeps/{sw['id']}"
    done_at_60 = None
    while sw["status"] == "running":
        time.sleep(0.5)
        sw = s.api.ok("GET", path)
        if done_at_60 is None and time.perf_counter() - t0 >= 60:
            done_at_60 = (time.perf_counter() - t0, sw["progress"]["done"], s.stats()["throttled"])
        if time.perf_counter() - t0 > 1800:
            raise RuntimeError(f"still running after 30 min: {sw['progress']}")
    wall = time.perf_counter() - t0
    p, st = sw["progress"], s.stats()
    steady, late = "—", "—"
    if done_at_60 and wall > done_at_60[0] + 10:
        steady = f"{(p['done'] - done_at_60[1]) / (wall - done_at_60[0]) * 60:.0f}"
        late = st["throttled"] - done_at_60[2]
    return {"setting": "no limit set" if rpm is None else f"rpm {rpm}", "runs": total, "done": p["done"],
            "failed": p["failed"], "wall": wall, "steady": steady, "seen": st["seen_window_max"],
            "through": st["window_max"], "throttled": st["throttled"], "late": late,
            "requests": st["chat_completions"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=360)
    ap.add_argument("--only", default="none,150,120")
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: cargo build --release -p server (or set PL_BIN)")
    admin = postgres_admin_url()
    rows = []
    for setting in args.only.split(","):
        rpm = None if setting == "none" else int(setting)

        def measure(url):
            with Limited(url) as s:
                return run(s, rpm, args.runs)
        r = with_database(admin, measure)
        rows.append(r)
        print(json.dumps(r), file=sys.stderr)
    print(f"| endpoint setting | runs done / failed | busiest 60 s at the mock (sent / let through) "
          f"| 429s / requests | 429s after the first minute | runs per minute after the first | wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['setting']} | {r['done']} / {r['failed']} | {r['seen']} / {r['through']} "
              f"| {r['throttled']} / {r['requests']} | {r['late']} | {r['steady']} | {r['wall']:.0f} s |")
    print(f"\nserve + {WORKERS} workers, {CONCURRENCY} slots each, one PostgreSQL; mock allows {LIMIT} "
          f"requests in any 60 s, 20 ms latency.")


if __name__ == "__main__":
    main()

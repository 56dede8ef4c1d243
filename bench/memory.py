#!/usr/bin/env python3
"""Memory as a new user meets it, and what a failed sign-in tells.

Starts the release server on a fresh SQLite DATA_DIR and prints the resident memory (RSS):
fresh and idle; after serving the pages (what `bench/foundation.py` serves); after 100 sign-ins,
20 at a time, and the pages again. Then the time a failed sign-in takes for an account and
for a username with no account (median and p95 of 20 each), and whether the answers match.

Usage: bench/memory.py [--signins 100] [--parallel 20]
Needs a release build (`make build`); reads CARGO_TARGET_DIR like the Makefile.
"""
import argparse, concurrent.futures, http.client, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import BIN, first_health, rss_kib, start_env, stop  # noqa: E402

PAGES = ["/health", "/setup", "/login", "/api/v1/openapi.json", "/pkg/promptlooper.css"]
PASSWORD = "correct horse battery"


def call(port, method, path, body=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, data


def serve_pages(port, rounds=20):
    for path in PAGES:
        for _ in range(rounds):
            call(port, "GET", path)


def settle(pid):
    time.sleep(3)
    return rss_kib(pid) / 1024


def failed_sign_in(port, username):
    t = time.perf_counter()
    status, body = call(port, "POST", "/api/v1/auth/login", {"username": username, "password": "wrong password"})
    return time.perf_counter() - t, status, json.loads(body)["error"]["message"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signins", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=20)
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: run `make build` first")
    rows = []
    with tempfile.TemporaryDirectory() as data:
        env = start_env(data)
        _, proc = first_health(None, env)
        port = int(env["PORT"])
        try:
            rows.append(("fresh, idle", f"{settle(proc.pid):.1f} MiB"))
            serve_pages(port)
            rows.append(("after serving the pages", f"{settle(proc.pid):.1f} MiB"))
            status, body = call(port, "POST", "/api/v1/auth/setup", {"username": "admin", "password": PASSWORD})
            assert status == 201, body
            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                codes = list(pool.map(lambda _: call(port, "POST", "/api/v1/auth/login",
                                                     {"username": "admin", "password": PASSWORD})[0],
                                      range(args.signins)))
            took = time.perf_counter() - t
            assert all(c == 200 for c in codes), codes
            serve_pages(port)
            rows.append((f"after {args.signins} sign-ins ({args.parallel} at a time, {took:.1f} s) and the pages",
                         f"{settle(proc.pid):.1f} MiB"))
            admin = json.loads(call(port, "POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD})[1])["token"]
            # Failed sign-ins: 4 on each of 5 accounts (under the lockout), 20 unknown names.
            for i in range(5):
                s, b = call(port, "POST", "/api/v1/admin/users", {"username": f"user{i}", "password": PASSWORD, "role": "member"}, admin)
                assert s == 201, b
            known = [failed_sign_in(port, f"user{i % 5}") for i in range(20)]
            unknown = [failed_sign_in(port, f"nobody{i}") for i in range(20)]
            q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
            for label, xs in [("failed sign-in, account", known), ("failed sign-in, no account", unknown)]:
                ms = [x[0] * 1000 for x in xs]
                rows.append((f"{label}: median / p95 of 20", f"{statistics.median(ms):.1f} ms / {q(ms, .95):.1f} ms"))
            same = {(s, m) for _, s, m in known} == {(s, m) for _, s, m in unknown}
            rows.append(("answers alike (status and message)", "yes" if same else f"NO: {known[0][1:]} vs {unknown[0][1:]}"))
        finally:
            stop(proc)
    print("| measure (release, SQLite) | value |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()

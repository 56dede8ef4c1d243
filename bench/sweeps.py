#!/usr/bin/env python3
"""Sweep throughput against the local mock LLM, end to end over REST. Prints a markdown table
with the targets and PASS/FAIL.

  1. 600-run grid (3 prompts × 2 models × 5 temperatures × 20 items), mock at 0 ms: runs/s.
  2. The same grid with the mock at 200 ms and MAX_CONCURRENT_RUNS=16: wall clock.
  3. 10,000-run grid (5 × 2 × 10 × 100) at 0 ms, then the same sweep again (all cached).
  4. Peak RSS of `serve` during the 10,000-run sweep (VmHWM; VmRSS sampled while running).
  5. 1 and 3 on PostgreSQL (TEST_DATABASE_URL, else scripts/ensure-postgres.sh), each in a
     fresh `pl_bench_<random>` database created and dropped with psql.

Every measurement gets a fresh DATA_DIR, a fresh mock and a fresh server process. Wall clock
runs from just before POST /sweep to the first poll (every 5 ms) that sees `completed`; the
server-side time is the sweep's finished_at − created_at (created_at is stamped after planning).

Usage: bench/sweeps.py [--quick] [--only N] [--rust-log LEVEL] [--keep-logs DIR] [--pg-socket DIR] [--rss-all]
  --quick      skips the 10,000-run sweep (3, 4) and PostgreSQL (5).
  --pg-socket  serve reaches PostgreSQL through its Unix socket (A/B against TCP).
The server authenticates the static API_KEY as admin, so no setup call is needed.
Needs a release build (`cargo build --release -p server`); reads CARGO_TARGET_DIR like the Makefile.
"""
import argparse, http.client, json, math, os, re, secrets, shutil, socket, subprocess, tempfile, threading, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/promptlooper/target"))
BIN = Path(os.environ["PL_BIN"]) if os.environ.get("PL_BIN") else TARGET / "release/promptlooper"
API_KEY = "bench-static-api-key-" + "x" * 24
CONCURRENCY = 16
POLL = 0.005


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM), or 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU seconds the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def parse_time(s):
    """RFC 3339 with up to nanoseconds (chrono) → aware datetime."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError(f"unexpected timestamp {s!r}")
    base = datetime.fromisoformat(m.group(1) + (m.group(3) if m.group(3) != "Z" else "+00:00"))
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    return base.replace(microsecond=int(frac)).astimezone(timezone.utc)


class Client:
    """One keep-alive connection with the bearer key; JSON in and out."""

    def __init__(self, port, token=None):
        self.port, self.token, self.conn = port, token, None

    def call(self, method, path, body=None, timeout=120):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def ok(self, method, path, body=None, expect=(200, 201)):
        status, js = self.call(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path} → {status}: {json.dumps(js)[:500]}")
        return js


def wait_health(port, proc, log, timeout=60.0):
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}); log tail:\n{tail(log)}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"no 200 on /health of port {port}; log tail:\n{tail(log)}")


def tail(path, n=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class Stack:
    """A mock LLM and a `serve` process on a fresh DATA_DIR (and optionally a database URL)."""

    def __init__(self, latency_ms, database_url=None, rust_log="warn", keep_logs=None, label="run", mock_args=()):
        self.tmp = Path(tempfile.mkdtemp(prefix="pl-bench-sweeps-"))
        self.postgres = bool(database_url)
        self.procs = []
        self.label, self.keep_logs = label, keep_logs
        self.mock_port = free_port()
        self.mock_log = self.tmp / "mock.log"
        self.server_log = self.tmp / "serve.log"
        self.mock = self._spawn([str(BIN), "mock-llm", "--bind", f"127.0.0.1:{self.mock_port}",
                                 "--latency-ms", str(latency_ms), *mock_args],
                                dict(os.environ, RUST_LOG="warn"), self.mock_log)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEY")}
        env.update(DATA_DIR=str(self.tmp / "data"), HOST="127.0.0.1", PORT=str(self.port), MCP_PORT="0", SEED_DEMO="false",
                   API_KEY=API_KEY, MAX_CONCURRENT_RUNS=str(CONCURRENCY), RUST_LOG=rust_log,
                   LEPTOS_SITE_ROOT=str(TARGET / "site/release"))
        if database_url:
            env["DATABASE_URL"] = database_url
        self.server_log = self.tmp / "serve.log"
        try:
            self.server = self._spawn([str(BIN), "serve"], env, self.server_log)
            wait_health(self.port, self.server, self.server_log)
            self._wait_mock()
        except BaseException:
            self.close()
            raise
        self.api = Client(self.port, API_KEY)

    def _spawn(self, cmd, env, log):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
        self.procs.append(p)
        return p

    def _wait_mock(self, timeout=20.0):
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            try:
                return self.mock_chat()
            except OSError:
                if self.mock.poll() is not None:
                    raise RuntimeError(f"mock exited; log tail:\n{tail(self.mock_log)}")
                time.sleep(0.01)
        raise RuntimeError("the mock LLM did not answer")

    def mock_chat(self):
        c = http.client.HTTPConnection("127.0.0.1", self.mock_port, timeout=5)
        c.request("GET", "/mock/stats")
        return json.loads(c.getresponse().read())["chat_completions"]

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.keep_logs:
            dest = Path(self.keep_logs)
            dest.mkdir(parents=True, exist_ok=True)
            for f in (self.server_log, self.mock_log):
                if f.exists():
                    shutil.copy(f, dest / f"{self.label}-{f.name}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_experiment(s, variants, temperatures, items, name):
    """Endpoint on the mock, a project and a one-stage experiment: variants × 2 models × temperatures."""
    ep = s.api.ok("POST", "/api/v1/endpoints", {"name": f"mock-{name}", "kind": "openai",
                                                "base_url": f"http://127.0.0.1:{s.mock_port}/v1", "timeout_ms": 30000})
    project = s.api.ok("POST", "/api/v1/projects", {"name": f"bench-{name}"})
    temps = [round(t / max(1, temperatures - 1), 4) for t in range(temperatures)]
    body = {
        "project_id": project["id"], "name": name,
        "sample_data": [{"input": {"text": f"item {i}: the quick brown fox jumps over the lazy dog"}} for i in range(items)],
        "pipeline_stages": [{"name": "one", "endpoint_id": ep["id"], "model": "m1", "user": "{{ input.text }}"}],
        "parameter_space": {"stages": [{
            "prompts": [{"name": f"v{v + 1}", "system": f"You are assistant variant {v + 1}. Answer briefly."}
                        for v in range(variants)],
            "models": [{"model": "m1"}, {"model": "m2"}],
            "params": {"temperature": temps},
        }]},
    }
    return s.api.ok("POST", "/api/v1/experiments", body)["id"]


def postgres_cpu():
    """CPU seconds used so far by every local `postgres` process (the backends the server talks to)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(d.name))
            except OSError:
                pass
    return total


class RssSampler(threading.Thread):
    """Samples VmRSS of a process every 10 ms (also while the POST is planning)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.halt = pid, proc_status(pid, "VmRSS"), threading.Event()

    def run(self):
        while not self.halt.wait(0.01):
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))

    def stop(self):
        self.halt.set()
        self.join()
        return max(self.peak, proc_status(self.pid, "VmRSS"))


def sweep(s, exp_id, expect_runs):
    """Starts a grid sweep and polls until it completes. Returns the measurements."""
    path = f"/api/v1/experiments/{exp_id}/sweep"
    chat0 = s.mock_chat()
    pid = s.server.pid
    cpu0 = (cpu_seconds(pid), cpu_seconds(s.mock.pid), postgres_cpu() if s.postgres else 0.0)
    sampler = RssSampler(pid)
    sampler.start()
    t0 = time.perf_counter()
    try:
        status, sw = s.api.call("POST", path, {"strategy": {"kind": "grid"}})
        t_post = time.perf_counter() - t0
        if status != 201:
            raise RuntimeError(f"POST sweep → {status}: {json.dumps(sw)[:500]}")
        polls, trace = 0, [(t_post, sw["progress"]["done"])]
        while sw["status"] != "completed":
            if sw["status"] != "running":
                raise RuntimeError(f"sweep ended {sw['status']}: {json.dumps(sw['progress'])}")
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"sweep still running after 600 s: {json.dumps(sw['progress'])}")
            time.sleep(POLL)
            sw = s.api.ok("GET", path)
            polls += 1
            trace.append((time.perf_counter() - t0, sw["progress"]["done"]))
        wall = time.perf_counter() - t0
    finally:
        rss_max = sampler.stop()
    cpu1 = (cpu_seconds(pid), cpu_seconds(s.mock.pid), postgres_cpu() if s.postgres else 0.0)
    p = sw["progress"]
    if p["total"] != expect_runs or p["done"] != expect_runs or p["failed"]:
        raise RuntimeError(f"expected {expect_runs} runs done, none failed; progress {json.dumps(p)}")
    server_s = (parse_time(sw["finished_at"]) - parse_time(sw["created_at"])).total_seconds()
    return {"wall": wall, "post": t_post, "post_status": sw["status"] if polls == 0 else "running",
            "server": server_s, "polls": polls, "runs": expect_runs, "progress": p,
            "calls": s.mock_chat() - chat0, "rss_max_kib": rss_max, "hwm_kib": proc_status(pid, "VmHWM"),
            "cpu_server": cpu1[0] - cpu0[0], "cpu_mock": cpu1[1] - cpu0[1], "cpu_pg": cpu1[2] - cpu0[2],
            "quarters": quarter_rates(trace, expect_runs)}


def quarter_rates(trace, total):
    """Runs/s over each quarter of the runs executed after planning (shows a pace that decays)."""
    start_t, start_done = trace[0]
    if start_done >= total:
        return []
    rates, mark = [], (start_t, start_done)
    for q in (1, 2, 3, 4):
        goal = start_done + (total - start_done) * q / 4
        for t, done in trace:
            if done >= goal and t > mark[0]:
                rates.append((done - mark[1]) / (t - mark[0]))
                mark = (t, done)
                break
    return rates


def verdict(ok):
    return "PASS" if ok else "FAIL"


def detail(m):
    out = (f"wall {m['wall']:.2f} s (POST {m['post'] * 1000:.0f} ms), server {m['server']:.2f} s; "
           f"CPU serve {m['cpu_server']:.2f} s / mock {m['cpu_mock']:.2f} s")
    if m["cpu_pg"]:
        out += f" / postgres {m['cpu_pg']:.2f} s"
    if m["quarters"]:
        out += "; runs/s by quarter " + " → ".join(f"{r:,.0f}" for r in m["quarters"])
    return out


def grid_600(rows, backend, db_url, args, latency):
    label = f"600-{backend}-{latency}ms"
    with Stack(latency, db_url, args.rust_log, args.keep_logs, label) as s:
        exp = make_experiment(s, 3, 5, 20, "grid-600")
        m = sweep(s, exp, 600)
    if latency == 0:
        rate = m["runs"] / m["wall"]
        rows.append((f"600-run grid, mock 0 ms ({backend})", f"{rate:,.0f} runs/s", "≥ 1,000 runs/s",
                     verdict(rate >= 1000), m["calls"], detail(m)))
    else:
        physical = math.ceil(600 / CONCURRENCY) * latency / 1000
        target = 1.05 * physical
        rows.append((f"600-run grid, mock {latency} ms, {CONCURRENCY} concurrent ({backend})", f"{m['wall']:.2f} s",
                     f"≤ {target:.2f} s (physical limit {physical:.2f} s)", verdict(m["wall"] <= target), m["calls"],
                     detail(m)))
    return m


def grid_10k(rows, backend, db_url, args):
    with Stack(0, db_url, args.rust_log, args.keep_logs, f"10k-{backend}") as s:
        exp = make_experiment(s, 5, 10, 100, "grid-10k")
        first = sweep(s, exp, 10_000)
        again = sweep(s, exp, 10_000)
    rate = first["runs"] / first["wall"]
    rows.append((f"10,000-run grid, mock 0 ms ({backend})", f"{first['wall']:.2f} s = {rate:,.0f} runs/s",
                 "— (measure 1 asks ≥ 1,000 runs/s)", "info", first["calls"], detail(first)))
    ok = again["wall"] <= 2 and again["calls"] == 0 and again["progress"]["cached"] == 10_000
    rows.append((f"same 10,000-run sweep again, all cached ({backend})", f"{again['wall']:.2f} s",
                 "≤ 2 s, 0 calls", verdict(ok), again["calls"],
                 f"POST answered `{again['post_status']}` in {again['post'] * 1000:.0f} ms; " + detail(again)))
    if backend == "SQLite" or args.rss_all:
        for what, m in (("the 10,000-run sweep", first), ("the cached re-run (process peak so far)", again)):
            mb = m["hwm_kib"] * 1024 / 1e6
            rows.append((f"peak RSS of serve after {what} ({backend})",
                         f"{m['hwm_kib'] / 1024:.1f} MiB = {mb:.1f} MB (VmHWM)", "≤ 120 MB", verdict(mb <= 120), "",
                         f"max VmRSS sampled every 10 ms during it: {m['rss_max_kib'] / 1024:.1f} MiB"))


def postgres_admin_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    out = subprocess.run([str(ROOT / "scripts/ensure-postgres.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"no PostgreSQL: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1]


def with_database(admin_url, fn, socket_dir=None):
    """Runs fn(url) on a fresh database, dropped afterwards. With socket_dir the server connects
    through the Unix socket in that folder instead of TCP."""
    if not shutil.which("psql"):
        raise RuntimeError("psql is not installed")
    name = f"pl_bench_{secrets.token_hex(4)}"
    subprocess.run(["psql", admin_url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        base, _, query = admin_url.partition("?")
        url = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
        if socket_dir:
            url += ("&" if query else "?") + "host=" + socket_dir
        return fn(url)
    finally:
        subprocess.run(["psql", admin_url, "-qAtX", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 10,000-run sweep and PostgreSQL")
    ap.add_argument("--only", type=int, choices=range(1, 6), help="one measurement (3 and 4 run together)")
    ap.add_argument("--rust-log", default="warn", help="RUST_LOG of serve (e.g. info to see planning)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy serve and mock logs here")
    ap.add_argument("--rss-all", action="store_true", help="also report peak RSS on PostgreSQL")
    ap.add_argument("--pg-socket", metavar="DIR", help="serve reaches PostgreSQL through the Unix socket in DIR "
                    "(e.g. /var/run/postgresql) instead of TCP")
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: run `cargo build --release -p server` first")
    want = lambda n: (args.only is None or args.only == n or (args.only == 4 and n == 3)) and \
        not (args.quick and n in (3, 4, 5))
    rows = []
    try:
        if want(1):
            grid_600(rows, "SQLite", None, args, 0)
        if want(2):
            grid_600(rows, "SQLite", None, args, 200)
        if want(3):
            grid_10k(rows, "SQLite", None, args)
        if want(5):
            admin = postgres_admin_url()
            label = "PostgreSQL" + (" via Unix socket" if args.pg_socket else "")
            with_database(admin, lambda url: grid_600(rows, label, url, args, 0), args.pg_socket)
            with_database(admin, lambda url: grid_10k(rows, label, url, args), args.pg_socket)
    finally:
        print("| measure | value | target | result | mock chat calls | details |\n| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print("| " + " | ".join(str(c) for c in r) + " |")
        print(f"\nmachine: {os.cpu_count()} cores; MAX_CONCURRENT_RUNS={CONCURRENCY}; binary {BIN}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The 600-run grid through `promptlooper run` versus through a running server. Prints a
markdown table (median, min and max of N rounds).

The grid: 3 prompts × 2 models × 5 temperatures × 20 items on the local mock LLM at 0 ms,
MAX_CONCURRENT_RUNS=16, one keywords scorer. Measured, wall clock:

  A. `promptlooper run grid.yaml` in a fresh temporary data folder: the whole process (start,
     migrations, endpoint, experiment, import, sweep, leaderboard, exit).
  B. The same file again on a kept DATA_DIR: every answer from the cache.
  C. `promptlooper run grid.yaml --server URL`: the CLI driving an already running server.
  D. REST alone on that server (what a program does): create the experiment, POST the sweep,
     poll every 5 ms until completed, read the leaderboard.

Usage: bench/cli.py [--rounds N]   (release build: `cargo build --release -p server`)
"""
import argparse, http.client, json, os, shutil, socket, statistics, subprocess, tempfile, time
from pathlib import Path

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/promptlooper/target"))
BIN = TARGET / "release/promptlooper"
API_KEY = "bench-cli-static-api-key-" + "x" * 24
CONCURRENCY = 16
TEMPS = [0.0, 0.25, 0.5, 0.75, 1.0]
ITEMS = [f"item {i}: the quick brown fox jumps over the lazy dog" for i in range(20)]
PROMPTS = [f"You are assistant variant {v + 1}. Answer briefly." for v in range(3)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=30.0):
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answered on :{port}{path}")


def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    payload = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path} → {r.status}: {payload[:300]!r}")
    return json.loads(payload) if payload else None


def grid_file(dir, mock_port, name):
    prompts = "\n".join(f"        - {{name: v{i + 1}, system: \"{p}\"}}" for i, p in enumerate(PROMPTS))
    items = "\n".join(f"    - {{text: \"{t}\"}}" for t in ITEMS)
    text = f"""project: bench
name: {name}
endpoints:
  mock:
    kind: openai
    base_url: http://127.0.0.1:{mock_port}/v1
    timeout_ms: 30000
data:
  items:
{items}
stages:
  - name: one
    endpoint: mock
    model: m1
    user: "{{{{ input.text }}}}"
    vary:
      prompts:
{prompts}
      models: [m1, m2]
      params:
        temperature: {json.dumps(TEMPS)}
scorers:
  - {{kind: keywords, required: [fox]}}
"""
    path = Path(dir) / f"{name}.yaml"
    path.write_text(text)
    return path


def timed(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} → {p.returncode}\n{p.stderr.decode()[-2000:]}")
    out = json.loads(p.stdout)
    progress = out["sweep"]["progress"]
    if progress["done"] != 600 or progress["failed"]:
        raise RuntimeError(f"expected 600 runs, none failed: {progress}")
    return wall, progress


def rest_round(port, mock_port, name):
    t0 = time.perf_counter()
    ep = call(port, "POST", "/api/v1/endpoints", {"name": f"mock-{name}", "kind": "openai",
                                                  "base_url": f"http://127.0.0.1:{mock_port}/v1", "timeout_ms": 30000})
    project = call(port, "POST", "/api/v1/projects", {"name": f"rest-{name}"})
    body = {
        "project_id": project["id"], "name": name,
        "sample_data": [{"input": {"text": t}} for t in ITEMS],
        "pipeline_stages": [{"name": "one", "endpoint_id": ep["id"], "model": "m1", "user": "{{ input.text }}"}],
        "parameter_space": {"stages": [{
            "prompts": [{"name": f"v{i + 1}", "system": p} for i, p in enumerate(PROMPTS)],
            "models": [{"model": "m1"}, {"model": "m2"}],
            "params": {"temperature": TEMPS},
        }]},
        "scoring_config": [{"kind": "keywords", "required": ["fox"]}],
    }
    exp = call(port, "POST", "/api/v1/experiments", body)["id"]
    sw = call(port, "POST", f"/api/v1/experiments/{exp}/sweep", {"strategy": {"kind": "grid"}})
    while sw["status"] == "running":
        time.sleep(0.005)
        sw = call(port, "GET", f"/api/v1/sweeps/{sw['id']}")
    call(port, "GET", f"/api/v1/experiments/{exp}/leaderboard?limit=10")
    wall = time.perf_counter() - t0
    if sw["progress"]["done"] != 600 or sw["progress"]["failed"]:
        raise RuntimeError(f"REST sweep: {sw['progress']}")
    return wall


def fmt(values):
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: cargo build --release -p server")
    tmp = Path(tempfile.mkdtemp(prefix="pl-bench-cli-"))
    procs = []
    try:
        mock_port = free_port()
        procs.append(subprocess.Popen([str(BIN), "mock-llm", "--bind", f"127.0.0.1:{mock_port}"],
                                      env=dict(os.environ, RUST_LOG="warn"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(mock_port, "/mock/stats")
        port = free_port()
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEY", "DATA_DIR")}
        base["MAX_CONCURRENT_RUNS"] = str(CONCURRENCY)
        server_env = dict(base, DATA_DIR=str(tmp / "server"), HOST="127.0.0.1", PORT=str(port), MCP_PORT="0",
                          SEED_DEMO="false", API_KEY=API_KEY, RUST_LOG="warn",
                          LEPTOS_SITE_ROOT=str(TARGET / "site/release"))
        procs.append(subprocess.Popen([str(BIN), "serve"], env=server_env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(port, "/health")
        a, b, c, d = [], [], [], []
        for r in range(args.rounds):
            name = f"grid-{r}"
            # Every round its own temperatures' worth of distinct prompts, so nothing is cached
            # across rounds or between A, C and D.
            for i in range(len(PROMPTS)):
                PROMPTS[i] = f"You are assistant variant {i + 1} of round {r}. Answer briefly."
            file_a = grid_file(tmp, mock_port, f"{name}-a")
            kept = tmp / f"kept-{r}"
            wall, _ = timed([str(BIN), "run", str(file_a), "--json"], dict(base, DATA_DIR=str(kept)))
            a.append(wall)
            wall, progress = timed([str(BIN), "run", str(file_a), "--json"], dict(base, DATA_DIR=str(kept)))
            if progress["cached"] != 600:
                raise RuntimeError(f"the second run should be all cached: {progress}")
            b.append(wall)
            for i in range(len(PROMPTS)):
                PROMPTS[i] = f"You are assistant variant {i + 1} of round {r}, server. Answer briefly."
            file_c = grid_file(tmp, mock_port, f"{name}-c")
            wall, _ = timed([str(BIN), "run", str(file_c), "--json", "--server", f"http://127.0.0.1:{port}"],
                            dict(base, PROMPTLOOPER_API_KEY=API_KEY))
            c.append(wall)
            for i in range(len(PROMPTS)):
                PROMPTS[i] = f"You are assistant variant {i + 1} of round {r}, REST. Answer briefly."
            d.append(rest_round(port, mock_port, f"{name}-d"))
            shutil.rmtree(kept, ignore_errors=True)
        print(f"600-run grid (3 prompts × 2 models × 5 temperatures × 20 items), mock 0 ms, "
              f"{CONCURRENCY} concurrent, {args.rounds} rounds\n")
        print("| path | wall clock, median (min, max) | runs/s (median) |")
        print("| --- | --- | --- |")
        for label, values in [
            ("A. `promptlooper run` (embedded SQLite, fresh temp folder, whole process)", a),
            ("B. `promptlooper run` again on the kept DATA_DIR (all 600 from the cache)", b),
            ("C. `promptlooper run --server` (CLI driving a running server)", c),
            ("D. REST alone on the running server (create, sweep, poll, leaderboard)", d),
        ]:
            print(f"| {label} | {fmt(values)} | {600 / statistics.median(values):,.0f} |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

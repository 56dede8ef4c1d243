#!/usr/bin/env python3
"""Guided sweeps against the full grid and random search at the same budget, on three
landscapes. Prints a markdown table per landscape and the verdict on the issue's target:
a guided sweep reaches ≥ 99 % of the grid's best weighted score using ≤ 25 % of the grid's
LLM calls, median over 10 seeds.

Landscapes (each 20 items, scored by lexical F1 against a reference):
  simulated  the built-in simulated provider: 5 prompts × 3 models × 11 temperatures × 2 top_p
             = 330 configurations (6,600 runs).
  narrow     a local mock whose quality peaks sharply at one temperature (0.6, width 0.08) for
             the right prompt and model: 10 prompts × 3 models × 11 temperatures = 330.
  plateau    a local mock where most configurations sit on a plateau (0.72–0.80) with
             per-item noise (σ 0.06) and the best a few points above: 330 configurations.

Per landscape: one grid sweep (its best entry is the reference, its calls the denominator),
then for each seed a guided sweep with budget.max_calls = 25 % of the grid's calls and a
random sweep drawing as many configurations as that budget evaluates on every item. Each
sweep runs on a fresh experiment with the response cache emptied first, so every call is
really made. The score of what a method found is the grid's score of the configuration it
ranks first (guided: its best evaluated on every item; random: its leaderboard's first).

Usage: bench/guided.py [--seeds N] [--only simulated,narrow,plateau]
Needs a release build (`cargo build --release -p server`); reads CARGO_TARGET_DIR.
"""
import argparse, hashlib, json, math, os, random, re, shutil, statistics, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import API_KEY, BIN, TARGET, Client, free_port, wait_health  # noqa: E402

ITEMS = 20
WORDS = ["Ada", "Lovelace", "London", "Babbage", "Grace", "Hopper", "COBOL", "Turing", "Bletchley",
         "Johnson", "NASA", "CERN", "Apollo", "Linux", "Helsinki", "Liskov", "Ritchie", "Lamarr",
         "Dartmouth", "Knuth", "Stanford", "Dijkstra", "Amsterdam", "Perlman", "Berkeley", "MIT"]
FILLER = ["perhaps", "various", "the", "somewhat", "related", "items", "also", "notably"]


def item_text(i):
    rng = random.Random(i)
    names = rng.sample(WORDS, 6)
    return f"Record {i}: " + " met ".join(names[:3]) + " near " + " and ".join(names[3:]) + "."


def ideal(text):
    last = text.split("\n\n")[-1]
    out = []
    for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", last):
        if (w[0].isupper() or w[0].isdigit()) and w not in out:
            out.append(w)
    return out


def unit(*parts):
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


# Each mock landscape: quality in [0, 1] of (prompt variant index, model, temperature), and
# per-item noise.
def narrow(v, model, t, item):
    prompt = [0.1, 0.3, 0.2, 0.5, 0.35, 0.15, 0.45, 1.0, 0.25, 0.4][v]
    m = {"m-a": 0.3, "m-b": 1.0, "m-c": 0.6}[model]
    return 0.3 + 0.22 * prompt + 0.13 * m + 0.3 * math.exp(-((t - 0.6) / 0.08) ** 2)


def plateau(v, model, t, item):
    prompt = [0.2, 0.5, 0.4, 0.6, 0.3, 0.7, 0.45, 0.55, 1.0, 0.35][v]
    m = {"m-a": 0.5, "m-b": 0.8, "m-c": 1.0}[model]
    base = 0.72 + 0.04 * prompt * m + 0.03 * (1 - abs(t - 0.3))
    noise = (unit("noise", v, model, t, item) - 0.5) * 2 * 0.06 * math.sqrt(3)
    return base + noise


LANDSCAPES = {"narrow": narrow, "plateau": plateau}


class MockHandler(BaseHTTPRequestHandler):
    # Keep-alive (HTTP/1.0 closes each connection, and a client reusing a closed one retries
    # after a back-off: seconds of idle time that are the mock's, not the sweep's).
    protocol_version = "HTTP/1.1"
    landscape = None
    calls = 0
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with MockHandler.lock:
            MockHandler.calls += 1
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        v = int(re.search(r"variant (\d+)", system).group(1))
        t = float(body.get("temperature", 0.7))
        item = re.search(r"Record (\d+)", user).group(1)
        q = max(0.02, min(0.99, self.landscape(v, body["model"], round(t, 2), item)))
        words = []
        for i, w in enumerate(ideal(user)):
            words.append(w if unit(body["model"], system, t, user, i) < q else FILLER[i % len(FILLER)])
        content = ", ".join(words)
        reply = json.dumps({
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(user) // 4 + 20, "completion_tokens": len(content) // 4 + 1},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Server:
    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="pl-bench-guided-"))
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEY")}
        env.update(DATA_DIR=str(self.tmp / "data"), HOST="127.0.0.1", PORT=str(self.port), MCP_PORT="0",
                   SEED_DEMO="false", API_KEY=API_KEY, RUST_LOG="warn", MAX_CONCURRENT_RUNS="16",
                   LEPTOS_SITE_ROOT=str(TARGET / "site/release"))
        self.log = self.tmp / "serve.log"
        self.proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"))
        wait_health(self.port, self.proc, self.log)
        self.api = Client(self.port, API_KEY)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def space_and_endpoint(s, name, mock_port):
    temps = [round(0.1 * i, 1) for i in range(11)]
    if name == "simulated":
        ep = s.api.ok("POST", "/api/v1/endpoints", {"name": "sim", "kind": "simulated"})
        prompts = [
            {"name": "plain", "system": "List the names in the text."},
            {"name": "only", "system": "Return only the names."},
            {"name": "think", "system": "Think step by step, then list the names."},
            {"name": "list", "system": "Return only a comma-separated list of the names."},
            {"name": "polite", "system": "Please give a comma-separated list of the names."},
        ]
        space = {"prompts": prompts, "models": [{"model": m} for m in ("sim-large", "sim-medium", "sim-small")],
                 "params": {"temperature": temps, "top_p": [0.7, 1.0]}}
        return ep["id"], "sim-medium", space
    ep = s.api.ok("POST", "/api/v1/endpoints", {"name": name, "kind": "openai",
                                                 "base_url": f"http://127.0.0.1:{mock_port}/v1"})
    prompts = [{"name": f"v{i}", "system": f"Extract the names (variant {i})."} for i in range(10)]
    space = {"prompts": prompts, "models": [{"model": m} for m in ("m-a", "m-b", "m-c")],
             "params": {"temperature": temps}}
    return ep["id"], "m-a", space


def make_experiment(s, project, endpoint, model, space, name):
    items = [{"input": {"text": item_text(i)}, "reference": ", ".join(ideal(item_text(i)))} for i in range(ITEMS)]
    return s.api.ok("POST", "/api/v1/experiments", {
        "project_id": project, "name": name, "sample_data": items,
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint, "model": model,
                             "system": "Extract the names (variant 0).", "user": "{{ input.text }}"}],
        "parameter_space": {"stages": [space]},
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1"}],
    })["id"]


def run(s, eid, body):
    s.api.ok("DELETE", "/api/v1/admin/cache")
    start = time.perf_counter()
    s.api.ok("POST", f"/api/v1/experiments/{eid}/sweep", body)
    while True:
        sw = s.api.ok("GET", f"/api/v1/experiments/{eid}/sweep")
        if sw["status"] != "running":
            break
        time.sleep(0.02)
    wall = time.perf_counter() - start
    board = s.api.ok("GET", f"/api/v1/experiments/{eid}/leaderboard?limit=500")
    p = sw["progress"]
    return sw, board, {"calls": p["calls"], "tokens": p["tokens_in"] + p["tokens_out"], "wall": wall}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def landscape(name, seeds, mock_port, patience=None):
    s = Server()
    try:
        project = s.api.ok("POST", "/api/v1/projects", {"name": name})["id"]
        endpoint, model, space = space_and_endpoint(s, name, mock_port)
        grid_eid = make_experiment(s, project, endpoint, model, space, f"{name} grid")
        _, board, grid = run(s, grid_eid, {"strategy": {"kind": "grid"}})
        truth = {e["config_key"]: e["score"] for e in board["entries"]}
        configs = len(truth)
        best = board["entries"][0]["score"]
        budget = grid["calls"] // 4
        results = {"guided": [], "random": []}
        for seed in range(1, seeds + 1):
            eid = make_experiment(s, project, endpoint, model, space, f"{name} guided {seed}")
            strategy = {"kind": "guided", "seed": seed}
            if patience:
                strategy["patience"] = patience
            sw, _, m = run(s, eid, {"strategy": strategy, "budget": {"max_calls": budget}})
            found = (sw["guide"].get("best") or {}).get("config_key")
            m["score"] = truth.get(found, 0.0)
            m["configs"] = len(sw["guide"]["configurations"])
            m["stop"] = sw["guide"].get("stop_reason")
            results["guided"].append(m)
            eid = make_experiment(s, project, endpoint, model, space, f"{name} random {seed}")
            _, b, m = run(s, eid, {"strategy": {"kind": "random", "samples": max(1, budget // ITEMS), "seed": seed}})
            m["score"] = truth.get(b["entries"][0]["config_key"], 0.0) if b["entries"] else 0.0
            m["configs"] = len(b["entries"])
            results["random"].append(m)
        return configs, best, grid, budget, results
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--only", default="simulated,narrow,plateau")
    ap.add_argument("--patience", type=int, default=None, help="the guided sweeps' patience (default: the sweep's own)")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"no release binary at {BIN}: cargo build --release -p server")
    verdicts = []
    for name in args.only.split(","):
        mock = None
        port = 0
        if name in LANDSCAPES:
            MockHandler.landscape = staticmethod(LANDSCAPES[name])
            mock = ThreadingHTTPServer(("127.0.0.1", 0), MockHandler)
            port = mock.server_address[1]
            threading.Thread(target=mock.serve_forever, daemon=True).start()
        try:
            configs, best, grid, budget, res = landscape(name, args.seeds, port, args.patience)
        finally:
            if mock:
                mock.shutdown()
        print(f"\n### {name}: {configs} configurations × {ITEMS} items; grid best {best:.4f}\n")
        print("| method | calls | share of grid | tokens | wall s | score (median, min–max) | ≥ 99 % of best | configurations |")
        print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        print(f"| grid | {grid['calls']:,} | 100 % | {grid['tokens']:,} | {grid['wall']:.2f} | {best:.4f} | — | {configs} |")
        for method in ("guided", "random"):
            r = res[method]
            scores = [x["score"] for x in r]
            share = median([x["calls"] for x in r]) / grid["calls"]
            hit = sum(1 for x in scores if x >= 0.99 * best)
            print(f"| {method} (budget {budget:,}) | {median([x['calls'] for x in r]):,.0f} | {share:.1%} | "
                  f"{median([x['tokens'] for x in r]):,.0f} | {median([x['wall'] for x in r]):.2f} | "
                  f"{median(scores):.4f} ({min(scores):.4f}–{max(scores):.4f}) | {hit}/{len(scores)} | "
                  f"{median([x['configs'] for x in r]):.0f} |")
        g = res["guided"]
        ok = median([x["score"] for x in g]) >= 0.99 * best and median([x["calls"] for x in g]) <= 0.25 * grid["calls"]
        verdicts.append((name, ok, median([x["score"] for x in g]) / best))
        stops = {}
        for x in g:
            stops[x["stop"]] = stops.get(x["stop"], 0) + 1
        print("\nguided stopped on: " + "; ".join(f"{k} ×{v}" for k, v in stops.items()))
    print("\n| landscape | guided median / grid best | target ≥ 99 % with ≤ 25 % of calls |")
    print("| --- | ---: | --- |")
    for name, ok, ratio in verdicts:
        print(f"| {name} | {ratio:.2%} | {'PASS' if ok else 'FAIL'} |")


if __name__ == "__main__":
    main()

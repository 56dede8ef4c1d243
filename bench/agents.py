#!/usr/bin/env python3
"""Agents and integrations, against the release `serve` on SQLite (fresh DATA_DIR):

  - MCP round trips with the official Python SDK (`mcp`): `tools/list` and a `get_leaderboard`
    call (an experiment of 10 configurations x 4 items, swept on the simulated endpoint), each
    x200 after 5 warm-ups, p50/p95 in ms, over streamable HTTP and over stdio;
  - webhooks: N `human_needed` events (REST, 8 at a time) to a webhook pointing at a local
    receiver; deliveries per second (first event -> last delivery) and the latency from each
    event's timestamp to its arrival, p50/p95.

Usage: $PL_TOOLS/mcp-venv/bin/python bench/agents.py [--events N]
(the venv `make test` creates has the SDK; `pip install -r tests/mcp/requirements.txt` elsewhere).
Needs a release build (`make build`); reads CARGO_TARGET_DIR like the Makefile.
"""
import argparse, asyncio, json, statistics, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweeps import API_KEY, BIN, Client as Rest  # noqa: E402
from datasets import Server  # noqa: E402

import httpx2  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

TIMES = 200


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def row(what, xs):
    print(f"| {what} | {statistics.median(xs):.2f} | {pct(xs, 95):.2f} |")


def seed(s):
    s.api.ok("POST", "/api/v1/auth/setup", {"username": "admin", "password": "correct horse battery"})
    endpoint = s.api.ok("POST", "/api/v1/endpoints", {"name": "sim", "kind": "simulated", "options": {"latency_ms": 0}})
    project = s.api.ok("POST", "/api/v1/projects", {"name": "agents"})
    e = s.api.ok("POST", "/api/v1/experiments", {
        "project_id": project["id"], "name": "ten configurations",
        "sample_data": [{"input": {"text": f"Ada Lovelace met Charles Babbage in London ({i})."},
                         "reference": "Ada Lovelace, Charles Babbage, London"} for i in range(4)],
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-large",
                             "user": "Extract the entities.\n\n{{ input.text }}"}],
        "parameter_space": {"stages": [{"models": [{"model": "sim-large"}, {"model": "sim-medium"}],
                                        "params": {"temperature": [0.1, 0.3, 0.5, 0.7, 0.9]}}]},
        "scoring_config": [{"kind": "embedding_similarity", "endpoint_id": endpoint["id"]}]})
    s.api.ok("POST", f"/api/v1/experiments/{e['id']}/sweep", {"strategy": {"kind": "grid"}})
    while s.api.ok("GET", f"/api/v1/experiments/{e['id']}/sweep")["status"] != "completed":
        time.sleep(0.05)
    return e["id"]


async def time_calls(client, eid):
    lists, boards = [], []
    for i in range(TIMES + 5):
        t = time.perf_counter()
        await client.list_tools()
        if i >= 5:
            lists.append((time.perf_counter() - t) * 1000)
    for i in range(TIMES + 5):
        t = time.perf_counter()
        r = await client.call_tool("get_leaderboard", {"experiment_id": eid, "limit": 10})
        assert not r.is_error, r
        if i >= 5:
            boards.append((time.perf_counter() - t) * 1000)
    return lists, boards


async def mcp_http(s, eid):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        url = f"http://127.0.0.1:{s.port}/mcp"
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            return await time_calls(client, eid)


async def mcp_stdio(s, eid):
    env = {"DATA_DIR": str(s.tmp / "data"), "PROMPTLOOPER_API_KEY": API_KEY, "API_KEY": API_KEY,
           "RUST_LOG": "warn", "SEED_DEMO": "false"}
    params = StdioServerParameters(command=str(BIN), args=["mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        return await time_calls(client, eid)


class Receiver(BaseHTTPRequestHandler):
    arrivals = {}
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        now = time.time()
        with Receiver.lock:
            Receiver.arrivals.setdefault(self.headers["webhook-id"], (now, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def webhooks(s, eid, n):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    s.api.ok("PUT", "/api/v1/admin/settings", {"allow_private_webhook_targets": True})
    s.api.ok("POST", "/api/v1/webhooks", {"name": "bench", "url": f"http://127.0.0.1:{receiver.server_port}/hook",
                                          "events": ["human_needed"]})
    local = threading.local()

    def fire(i):
        # One connection per thread (http.client connections are not shared).
        if not hasattr(local, "api"):
            local.api = Rest(s.port, API_KEY)
        local.api.ok("POST", f"/api/v1/experiments/{eid}/human-needed", {"reason": f"event {i}"})

    start = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fire, range(n)))
    sent = time.time() - start
    deadline = time.time() + 120
    while len(Receiver.arrivals) < n and time.time() < deadline:
        time.sleep(0.01)
    receiver.shutdown()
    got = list(Receiver.arrivals.values())
    last = max(t for t, _ in got)
    latency = [(t - datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")).timestamp()) * 1000
               for t, b in got]
    return len(got), sent, last - start, latency


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    args = ap.parse_args()
    s = Server()
    try:
        eid = seed(s)
        print("| MCP round trip | p50 ms | p95 ms |\n| --- | --- | --- |")
        lists, boards = asyncio.run(mcp_http(s, eid))
        row("HTTP tools/list", lists)
        row("HTTP get_leaderboard", boards)
        lists, boards = asyncio.run(mcp_stdio(s, eid))
        row("stdio tools/list", lists)
        row("stdio get_leaderboard", boards)
        n, sent, took, latency = webhooks(s, eid, args.events)
        print(f"\nwebhooks: {n} of {args.events} events delivered; events posted in {sent:.2f} s, "
              f"all delivered {took:.2f} s after the first: {n / took:.0f} deliveries/s")
        print("| webhook latency (event -> receiver) | p50 ms | p95 ms |\n| --- | --- | --- |")
        row(f"{n} deliveries", latency)
    finally:
        s.close()


if __name__ == "__main__":
    main()

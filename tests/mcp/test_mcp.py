"""PromptLooper's MCP server driven by the official MCP Python SDK, as an agent would: over
streamable HTTP (at /mcp on the main port and on the MCP_PORT listener) and over stdio
(`promptlooper mcp`). Starts the real binary on a fresh SQLite data directory; the LLM is the
built-in simulated endpoint (no network).

Run: PL_BIN=…/promptlooper python -m unittest -v tests/mcp/test_mcp.py
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import httpx2
from mcp import Client, StdioServerParameters, types
from mcp.client.streamable_http import streamable_http_client

BIN = os.environ.get("PL_BIN") or os.path.expanduser(
    "~/.cache/promptlooper/target/debug/promptlooper"
)

# Everything the spec and the issue name, and nothing else.
TOOLS = {
    "create_project", "create_experiment", "configure_endpoint", "run_single", "run_sweep",
    "get_leaderboard", "get_run_detail", "export_best_config", "pause_sweep", "resume_sweep",
    "add_human_score", "get_experiment_status", "list_models", "preview_sweep", "stop_sweep",
    "redirect_sweep", "fork_experiment", "approve_config", "reject_config", "compare_configs",
    "get_events", "list_projects", "list_experiments", "request_human", "suggest_configurations",
}
READ_ONLY = {
    "get_leaderboard", "get_run_detail", "get_experiment_status", "list_models", "preview_sweep",
    "compare_configs", "get_events", "list_projects", "list_experiments",
}


class Server:
    """The binary serving on free ports, with an admin, an admin key and a guest key."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="pl-mcp-")
        env = {
            **os.environ, "DATA_DIR": self.data, "HOST": "127.0.0.1", "PORT": "0",
            "MCP_PORT": "0", "RUST_LOG": "info", "LOG_FORMAT": "text", "NO_COLOR": "1",
        }
        self.log = open(os.path.join(self.data, "server.log"), "w+")
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        self.url = self.mcp_url = None
        while time.time() < deadline and not (self.url and self.mcp_url):
            time.sleep(0.1)
            text = open(self.log.name).read()
            m = re.search(r"listening on (http://[0-9.:]+)", text)
            self.url = m.group(1) if m else None
            m = re.search(r"MCP \(streamable HTTP\) on (http://[0-9.:]+/mcp)", text)
            self.mcp_url = m.group(1) if m else None
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + text)
        if not (self.url and self.mcp_url):
            raise RuntimeError("server did not start:\n" + open(self.log.name).read())
        token = self.rest("POST", "/api/v1/auth/setup",
                          {"username": "admin", "password": "correct horse battery"})["token"]
        self.admin_key = self.rest("POST", "/api/v1/admin/api-keys",
                                   {"name": "agent", "role": "admin"}, token)["key"]
        self.guest_key = self.rest("POST", "/api/v1/admin/api-keys",
                                   {"name": "watcher", "role": "guest"}, token)["key"]

    def rest(self, method, path, body=None, token=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server()


def tearDownModule():
    SERVER.stop()


def http_client(key, url=None, **kw):
    """An MCP client over streamable HTTP with the classic initialize handshake."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                              timeout=httpx2.Timeout(30, read=300))
    client = Client(streamable_http_client(url or SERVER.url + "/mcp", http_client=http),
                    mode="legacy", **kw)
    return http, client


async def call(client, name, args):
    r = await client.call_tool(name, args)
    return r


def ok(test, r):
    test.assertFalse(r.is_error, r.content[0].text if r.content else r)
    return r.structured_content


def refused(test, r, field=None):
    test.assertTrue(r.is_error, r.structured_content)
    err = r.structured_content["error"]
    if field is not None:
        test.assertEqual(err["field"], field, err)
    test.assertIn(err["message"], r.content[0].text)
    return err


ITEMS = [
    {"input": {"text": t}, "reference": ref}
    for t, ref in [
        ("Ada Lovelace wrote the first program in London.", "Ada Lovelace, London"),
        ("Alan Turing broke codes at Bletchley Park.", "Alan Turing, Bletchley Park"),
        ("Grace Hopper built compilers in Arlington.", "Grace Hopper, Arlington"),
        ("Linus Torvalds wrote Linux in Helsinki.", "Linus Torvalds, Helsinki"),
    ]
]


class Http(unittest.IsolatedAsyncioTestCase):
    async def test_the_spec_example_end_to_end(self):
        """Project → endpoint → experiment with references and embedding similarity → grid over
        temperature 0.1–0.9 step 0.2 on two models with progress → leaderboard → .env."""
        progress = []

        async def on_message(msg):
            if isinstance(msg, types.ProgressNotification):
                progress.append(msg.params)

        http, client = http_client(SERVER.admin_key, message_handler=on_message)
        async with http, client:
            listed = await client.list_tools()
            names = {t.name for t in listed.tools}
            self.assertEqual(names, TOOLS)
            for t in listed.tools:
                self.assertGreater(len(t.description), 60, t.name)
                self.assertEqual(t.input_schema["type"], "object", t.name)
                if t.name in READ_ONLY:
                    self.assertTrue(t.annotations and t.annotations.read_only_hint, t.name)
            create = next(t for t in listed.tools if t.name == "create_experiment")
            self.assertIn("pipeline_stages", create.input_schema["properties"])
            self.assertIn("pipeline_stages", create.input_schema["required"])

            project = ok(self, await call(client, "create_project", {"name": "Chrysopedia Extraction"}))
            endpoint = ok(self, await call(client, "configure_endpoint", {
                "endpoint": {"name": "local models", "kind": "simulated", "api_key": "sk-very-secret"}}))
            self.assertNotIn("sk-very-secret", json.dumps(endpoint))
            models = ok(self, await call(client, "list_models", {"endpoint_id": endpoint["id"]}))
            served = models["endpoints"][0]["models"]
            self.assertIn("sim-large", served)
            self.assertIn("sim-medium", served)

            experiment = ok(self, await call(client, "create_experiment", {
                "project_id": project["id"], "name": "stage3_extraction", "sample_data": ITEMS,
                "pipeline_stages": [{
                    "name": "stage3_extraction", "endpoint_id": endpoint["id"], "model": "sim-large",
                    "system": "Extract the people and places as a comma-separated list.",
                    "user": "{{ input.text }}", "params": {"temperature": 0.5}}],
                "parameter_space": {"stages": [{
                    "models": [{"model": "sim-large"}, {"model": "sim-medium"}],
                    "params": {"temperature": {"min": 0.1, "max": 0.9, "step": 0.2}}}]},
                "scoring_config": [{"kind": "embedding_similarity", "endpoint_id": endpoint["id"]}],
            }))
            eid = experiment["id"]

            sweep = {"strategy": {"kind": "grid"}}
            preview = ok(self, await call(client, "preview_sweep", {"experiment_id": eid, "sweep": sweep}))
            self.assertEqual(preview["configurations"], 10)  # 5 temperatures × 2 models
            self.assertEqual(preview["runs"], 40)

            started = await client.call_tool("run_sweep", {"experiment_id": eid, "sweep": sweep},
                                             progress_callback=lambda *a: asyncio.sleep(0))
            started = ok(self, started)
            self.assertTrue(started["sweep_id"])
            self.assertEqual(started["preview"]["runs"], 40)

            deadline = time.time() + 120
            while True:
                status = ok(self, await call(client, "get_experiment_status", {"experiment_id": eid}))
                if status["sweep"]["status"] == "completed" and status["best"]:
                    break
                self.assertLess(time.time(), deadline, status)
                await asyncio.sleep(0.3)
            self.assertEqual(status["sweep"]["progress"]["done"], 40)
            # Progress notifications followed the call until the sweep ended.
            for _ in range(50):
                if progress and progress[-1].progress == 40:
                    break
                await asyncio.sleep(0.1)
            self.assertTrue(progress, "no progress notifications")
            self.assertEqual(progress[-1].total, 40)
            self.assertEqual(progress[-1].progress, 40)
            self.assertIn("best", progress[-1].message)
            done = [p.progress for p in progress]
            self.assertEqual(done, sorted(done))

            board = ok(self, await call(client, "get_leaderboard", {"experiment_id": eid, "limit": 3}))
            self.assertEqual(board["total"], 10)
            best = board["entries"][0]
            self.assertIsNotNone(best["score"])
            self.assertGreaterEqual(best["score"], board["entries"][1]["score"])

            env = await call(client, "export_best_config", {"experiment_id": eid, "format": "env"})
            ok(self, env)
            text = env.content[0].text
            self.assertRegex(text, r"(?m)^[A-Z0-9_]*MODEL[A-Z0-9_]*=" + re.escape(best["config"]["stages"][0]["model"]))
            self.assertIn("TEMPERATURE", text)
            self.assertNotIn("sk-very-secret", text)

            run = ok(self, await call(client, "get_run_detail", {"run_id": best["best_run_id"]}))
            self.assertNotIn("sk-very-secret", json.dumps(run))
            self.assertEqual(run["config_key"], best["config_key"])
            self.assertTrue(run["stages"][0]["response_raw"])

            # Steering and people in the loop.
            second = board["entries"][1]
            compared = ok(self, await call(client, "compare_configs", {
                "experiment_id": eid, "a": best["config_key"], "b": second["config_key"]}))
            self.assertIn("paired", compared)
            approved = ok(self, await call(client, "approve_config",
                                           {"run_id": best["best_run_id"], "note": "ship it"}))
            self.assertEqual(approved["mark"], "approved")
            asked = ok(self, await call(client, "request_human", {
                "experiment_id": eid,
                "request": {"reason": "Two models tie; pick one.", "context": {"a": best["config_key"]}}}))
            self.assertEqual(asked["type"], "human_needed")
            events = ok(self, await call(client, "get_events", {
                "experiment_id": eid, "types": "human_needed,configuration.approved"}))
            self.assertEqual({e["type"] for e in events["events"]},
                             {"human_needed", "configuration.approved"})

    async def test_an_agent_drives_a_guided_sweep_by_suggestions(self):
        """Ask/tell: a guided sweep in agent mode waits for suggestions; the agent suggests,
        reads the race from the status, and a bad suggestion is a tool error naming the field."""
        http, client = http_client(SERVER.admin_key)
        async with http, client:
            project = ok(self, await call(client, "create_project", {"name": "Agent-guided"}))
            endpoint = ok(self, await call(client, "configure_endpoint", {
                "endpoint": {"name": "sim for agents", "kind": "simulated"}}))
            experiment = ok(self, await call(client, "create_experiment", {
                "project_id": project["id"], "name": "asked and told", "sample_data": ITEMS,
                "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-medium",
                                     "system": "List the names.", "user": "{{ input.text }}"}],
                "parameter_space": {"stages": [{
                    "models": [{"model": "sim-large"}, {"model": "sim-small"}],
                    "params": {"temperature": [0.2, 0.9]}}]},
                "scoring_config": [{"kind": "lexical_similarity"}],
            }))
            eid = experiment["id"]
            sweep = {"strategy": {"kind": "guided", "search": "agent", "seed": 2}, "budget": {"max_calls": 40}}
            preview = ok(self, await call(client, "preview_sweep", {"experiment_id": eid, "sweep": sweep}))
            self.assertTrue(preview["estimate"])
            self.assertEqual(preview["budget_calls"], 40)
            ok(self, await call(client, "run_sweep", {"experiment_id": eid, "sweep": sweep}))
            refused(self, await call(client, "suggest_configurations", {
                "experiment_id": eid, "configurations": [{"stages": [{"model": "gpt-nope", "params": {"temperature": 7}}]}]}),
                "configurations[0].stages[0].params.temperature")
            told = ok(self, await call(client, "suggest_configurations", {
                "experiment_id": eid, "configurations": [
                    {"stages": [{"model": "sim-large", "params": {"temperature": 0.2}}]},
                    {"stages": [{"model": "sim-small", "params": {"temperature": 0.9}}]}]}))
            self.assertEqual(len(told["accepted"]), 2)
            deadline = time.time() + 60
            while True:
                status = ok(self, await call(client, "get_experiment_status", {"experiment_id": eid}))
                guide = status["sweep"]["guide"]
                if len(guide["configurations"]) == 2 and all(c["state"] != "racing" for c in guide["configurations"]):
                    break
                self.assertLess(time.time(), deadline, status)
                await asyncio.sleep(0.2)
            self.assertEqual(status["sweep"]["status"], "running", "it waits for more suggestions")
            self.assertLessEqual(status["sweep"]["progress"]["calls"], 40)
            ok(self, await call(client, "stop_sweep", {"experiment_id": eid}))

    async def test_a_guest_key_reads_but_cannot_write(self):
        http, client = http_client(SERVER.guest_key)
        async with http, client:
            ok(self, await call(client, "list_projects", {}))
            err = refused(self, await call(client, "create_project", {"name": "not allowed"}))
            self.assertEqual(err["code"], "forbidden")
            self.assertIn("read-only", err["message"])
        admin_http, admin = http_client(SERVER.admin_key)
        async with admin_http, admin:
            names = [p["name"] for p in ok(self, await call(admin, "list_projects", {}))["projects"]]
            self.assertNotIn("not allowed", names)

    async def test_bad_arguments_are_tool_errors_naming_the_field(self):
        http, client = http_client(SERVER.admin_key)
        async with http, client:
            refused(self, await call(client, "create_project", {}), "name")
            refused(self, await call(client, "create_project", {"name": "x", "colour": "red"}))
            refused(self, await call(client, "get_leaderboard", {"experiment_id": "not-a-uuid"}),
                    "experiment_id")
            # (a tagged enum's inner path is not kept by serde: the strategy is named)
            err = refused(self, await call(client, "preview_sweep", {
                "experiment_id": "00000000-0000-0000-0000-000000000000",
                "sweep": {"strategy": {"kind": "random", "samples": "many"}}}),
                "sweep.strategy")
            self.assertIn('"many"', err["message"])
            refused(self, await call(client, "preview_sweep", {
                "experiment_id": "00000000-0000-0000-0000-000000000000",
                "sweep": {"strategy": {"kind": "grid"}, "repeats": -1}}),
                "sweep.repeats")
            err = refused(self, await call(client, "get_leaderboard",
                                           {"experiment_id": "00000000-0000-0000-0000-000000000000"}))
            self.assertEqual(err["code"], "not_found")
            refused(self, await call(client, "configure_endpoint", {}), "endpoint")
            # The session still works after all that.
            ok(self, await call(client, "list_projects", {}))

    async def test_the_standalone_listener_serves_the_same_tools(self):
        http, client = http_client(SERVER.admin_key, url=SERVER.mcp_url)
        async with http, client:
            self.assertEqual({t.name for t in (await client.list_tools()).tools}, TOOLS)
            ok(self, await call(client, "list_projects", {}))

    async def test_no_credential_a_foreign_origin_and_a_foreign_host_are_refused(self):
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "probe", "version": "0"}}}
        accept = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        async with httpx2.AsyncClient() as http:
            for url in (SERVER.url + "/mcp", SERVER.mcp_url):
                r = await http.post(url, json=init, headers=accept)
                self.assertEqual(r.status_code, 401, r.text)
                self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
                auth = {**accept, "authorization": f"Bearer {SERVER.admin_key}"}
                r = await http.post(url, json=init, headers={**auth, "origin": "https://evil.example"})
                self.assertEqual(r.status_code, 403, r.text)
                r = await http.post(url, json=init, headers={**auth, "host": "evil.example"})
                self.assertEqual(r.status_code, 421, r.text)
                port = url.split(":")[2].split("/")[0]
                r = await http.post(url, json=init, headers={**auth, "origin": f"http://localhost:{port}"})
                self.assertEqual(r.status_code, 200, r.text)
                r = await http.post(url, json=init, headers={
                    **accept, "authorization": "Bearer pl_not_a_real_key"})
                self.assertEqual(r.status_code, 401, r.text)


class Stdio(unittest.IsolatedAsyncioTestCase):
    async def test_stdio_acts_as_the_key_user_on_the_same_database(self):
        env = {"DATA_DIR": SERVER.data, "PROMPTLOOPER_API_KEY": SERVER.admin_key,
               "RUST_LOG": "warn", "SEED_DEMO": "false"}
        params = StdioServerParameters(command=BIN, args=["mcp"], env=env)
        async with Client(params, mode="legacy") as client:
            self.assertEqual({t.name for t in (await client.list_tools()).tools}, TOOLS)
            project = ok(self, await call(client, "create_project", {"name": "from stdio"}))
            # The running server sees what stdio wrote: one database.
            projects = SERVER.rest("GET", "/api/v1/projects", token=SERVER.admin_key)
            self.assertIn(project["id"], [p["id"] for p in projects])
            refused(self, await call(client, "get_run_detail", {"run_id": 7}), "run_id")

    async def test_stdio_refuses_to_start_without_a_valid_key(self):
        for key in (None, "pl_wrong"):
            env = {**os.environ, "DATA_DIR": SERVER.data}
            env.pop("PROMPTLOOPER_API_KEY", None)
            if key:
                env["PROMPTLOOPER_API_KEY"] = key
            p = subprocess.run([BIN, "mcp"], env=env, input=b"", capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"PROMPTLOOPER_API_KEY", p.stderr)
            if key:
                self.assertNotIn(key.encode(), p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

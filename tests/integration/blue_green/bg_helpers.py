"""Helpers of the blue-green integration tests: a stack in the blue-green model, a Caddy run
from a Caddyfile whose upstream is an imported snippet, and a load probe that keeps every
response of every client in order.

The model: the shared Compose project <stack> runs only the stateful `db`; the switchable
`web` runs in <stack>-blue / <stack>-green, each on its own port on 127.0.0.1, joined to
<stack>_default. Everything here reads what is really there (docker, Caddy's admin API, the
state file, the app's answer), independently of the role under test.
"""
import http.client
import json
import os
import shutil
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
for _sub in ("rollback", "caddy"):
    # stack.py and caddy_helpers.py are reused; appended so nothing of ours is shadowed
    if os.path.join(INTEGRATION, _sub) not in sys.path:
        sys.path.append(os.path.join(INTEGRATION, _sub))

from ansible_run import run_playbook  # noqa: E402  (tests/integration is on the path)
from caddy_helpers import CaddyfileCaddy, free_port  # noqa: E402
from stack import Stack, docker  # noqa: E402

SWITCH_PLAYBOOK = os.path.join(HERE, "playbooks", "switch.yml")
COLORS = ("blue", "green")
IMAGE = "ops-rollback-test/app"


def output(run):
    """stdout and stderr of a playbook run with the callback's line folding undone."""
    return " ".join((run.stdout + run.stderr).split())


def failure_messages(run):
    """`msg` of every failed task result in a JSON-callback run, in run order (for a loop,
    the message of each item that has one)."""
    found = []
    for play in (run.report or {}).get("plays", []):
        for task in play.get("tasks", []):
            for result in task["hosts"].values():
                if not result.get("failed"):
                    continue
                items = result.get("results") if isinstance(result.get("results"), list) else []
                msgs = [item["msg"] for item in items if isinstance(item, dict) and item.get("msg")]
                for msg in msgs or [result.get("msg") or result.get("stderr") or result]:
                    found.append("%s: %s" % (task["task"]["name"], msg))
    return found


def changed_tasks(run):
    """Names of the tasks that reported a change in a JSON-callback run."""
    found = []
    for play in (run.report or {}).get("plays", []):
        for task in play.get("tasks", []):
            if any(result.get("changed") for result in task["hosts"].values()):
                found.append(task["task"]["name"])
    return found


# -- the stack ---------------------------------------------------------------------------
class BlueGreenStack(Stack):
    """stack.py's Stack in the blue-green model. `port` (WEB_PORT of .env) is the blue port."""

    def __init__(self, name, blue_port, green_port, base):
        super().__init__(name, blue_port, base)
        self.ports = {"blue": blue_port, "green": green_port}

    def project(self, color=None):
        return "%s-%s" % (self.name, color) if color else self.name

    def start_db(self):
        """Only the stateful service runs in the shared project."""
        self.compose("up", "--detach", "--wait", "--wait-timeout", "90", "db")

    def record(self, label, image_version, unhealthy=False):
        """Write .env for a release and record it (not verified: web runs in a color project)."""
        self.write_env(image_version, IMAGE, unhealthy)
        run = run_playbook("ops.rollback.record_release", {
            "stack": self.name, "project_dir": self.project_dir, "state_dir": self.state_dir,
            "version": label, "verify": False}, json_output=False)
        assert run.rc == 0, output(run)[-6000:]
        release = self.release(label)
        web, wanted = release["services"]["web"], self.image_id(image_version)
        assert web["image_id"] == wanted, (
            "record_release recorded release %s (%s) with web image %s = %s, but that reference is %s; "
            "running colors: %s" % (release["id"], label, web["image"], web["image_id"], wanted,
                                    {c: self.running(c) for c in ("blue", "green")}))
        return release["id"]

    def destroy(self):
        for project in (self.project("blue"), self.project("green"), self.name):
            docker("compose", "--project-name", project, "down", "--volumes", "--remove-orphans", "--timeout", "2",
                   check=False)
            label = "label=com.docker.compose.project=" + project
            left = docker("ps", "-aq", "--filter", label, check=False).stdout.split()
            if left:
                docker("rm", "-f", *left, check=False)
            volumes = docker("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
            if volumes:
                docker("volume", "rm", *volumes, check=False)
        super().destroy()

    # -- what is really there ----------------------------------------------------------
    def running(self, color=None):
        """service -> info of the running containers of the shared or a color project."""
        ids = docker("ps", "--quiet", "--no-trunc", "--filter",
                     "label=com.docker.compose.project=" + self.project(color)).stdout.split()
        found = {}
        for info in json.loads(docker("inspect", *ids).stdout) if ids else []:
            found[info["Config"]["Labels"]["com.docker.compose.service"]] = {
                "id": info["Id"], "image_id": info["Image"],
                "networks": sorted(info["NetworkSettings"]["Networks"]),
                "ports": sorted("%s:%s" % (b["HostIp"], b["HostPort"])
                                for binds in (info["NetworkSettings"]["Ports"] or {}).values() for b in binds or []),
            }
        return found

    def all_containers(self):
        """Every container (running or not) of the three projects: (project, id, state)."""
        found = set()
        for project in (self.name, self.project("blue"), self.project("green")):
            out = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}", "--filter",
                         "label=com.docker.compose.project=" + project).stdout.split("\n")
            found |= {(project,) + tuple(line.split()) for line in out if line.strip()}
        return found

    def state_path(self):
        return os.path.join(self.state_dir, self.name, "blue_green.json")

    def state_bytes(self):
        path = self.state_path()
        if not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            return handle.read()

    def state(self):
        data = self.state_bytes()
        return json.loads(data) if data is not None else None

    def retire_outcome(self, color):
        """What the last delayed retire of `color` did (its retire.json), or None."""
        path = os.path.join(self.state_dir, self.name, "colors", color, "retire.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def wait_idle_stopped(self, color, timeout=90):
        """The role retires the old color in the background: wait (bounded) until it is gone."""
        deadline = time.monotonic() + timeout
        while self.running(color) and time.monotonic() < deadline:
            time.sleep(0.5)
        return self.running(color)

    def image_id(self, version):
        return docker("image", "inspect", "--format", "{{.Id}}", "%s:%s" % (IMAGE, version)).stdout.strip()

    def direct_version(self, color):
        return served_version("http://127.0.0.1:%d/health" % self.ports[color], attempts=1)


def served_version(url, attempts=10):
    """The version a /health URL answers, on a fresh connection; None when it doesn't."""
    parts = urllib.parse.urlsplit(url)
    for attempt in range(attempts):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        try:
            conn.request("GET", parts.path or "/")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return json.loads(body)["version"]
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        if attempt + 1 < attempts:
            time.sleep(0.3)
    return None


# -- Caddy -------------------------------------------------------------------------------
# -- load --------------------------------------------------------------------------------
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Client:
    def __init__(self, index, keepalive):
        self.name = "%s-%d" % ("keepalive" if keepalive else "fresh", index)
        self.keepalive = keepalive
        self.conn = None
        self.connections = 0
        self.records = []             # (t_start, t_end, ok, version or error, retried, wall start)

    def successes(self):
        return [r for r in self.records if r[2]]


class Probe:
    """Clients that GET `url` in a loop from the moment start() is called: `keepalive` of
    them over one kept-alive connection each (reconnecting when it is closed), `fresh` of them
    on a new connection per request. Bounded by `max_requests` in total and by `max_s`.

    A request whose connection was closed or reset after the request was sent and before
    any byte of a response came back is sent again once, on a new connection, as browsers
    and HTTP libraries do for idempotent requests (RFC 9110, 9.2.2). Caddy does that to a few
    connections at the instant it loads a new config (any config change through its admin
    API, with or without the role: the old server is shut down gracefully). Each record says
    whether it was retried, with the wall time it started, so a test can require that every
    retry happened at a config load. Everything else that is not a 200 with the app's JSON,
    including a retry that fails again, is a failed request.
    """

    def __init__(self, url, keepalive=2, fresh=2, max_requests=60000, max_s=240.0, pause_s=0.01):
        parts = urllib.parse.urlsplit(url)
        if parts.hostname != "127.0.0.1":
            raise ValueError("the probe only targets 127.0.0.1, not %s" % url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path or "/"
        self.max_requests = max_requests
        self.max_s = max_s
        self.pause_s = pause_s
        self.clients = [Client(i, True) for i in range(keepalive)] + [Client(i, False) for i in range(fresh)]
        self.count = 0
        self.limit = None             # "count" or "time" when a bound stopped the probe
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.t0 = None

    # -- running ---------------------------------------------------------------------------
    def start(self):
        self.t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._work, args=(c,), daemon=True) for c in self.clients]
        for thread in self._threads:
            thread.start()
        return self

    def wait_ready(self, per_client=20, timeout=30):
        """Until every client has `per_client` successful answers (the 'before' picture)."""
        deadline = time.monotonic() + timeout
        while any(len(c.successes()) < per_client for c in self.clients):
            assert time.monotonic() < deadline, "probe not ready: %s" % self.summary()
            time.sleep(0.05)
        return self

    def stop(self, min_total=0, tail_s=1.0):
        """Keep going `tail_s` more seconds and until `min_total` requests were sent (within
        the bounds), then stop every client."""
        time.sleep(tail_s)
        while self.count < min_total and self.limit is None:
            time.sleep(0.05)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for client in self.clients:
            if client.conn is not None:
                client.conn.close()
        return self.summary()

    def _work(self, client):
        while not self._stop.is_set():
            with self._lock:
                if self.count >= self.max_requests:
                    self.limit = self.limit or "count"
                    return
                if time.monotonic() - self.t0 > self.max_s:
                    self.limit = self.limit or "time"
                    return
                self.count += 1
            wall = time.time()
            started = time.monotonic() - self.t0
            status, body, retried = self._get(client)
            ended = time.monotonic() - self.t0
            ok, what = False, body
            if status == 200:
                try:
                    ok, what = True, json.loads(body)["version"]
                except (ValueError, KeyError, TypeError):
                    what = "bad body: %r" % body[:80]
            elif status is not None:
                what = "HTTP %d: %r" % (status, body[:80])
            client.records.append((started, ended, ok, what, retried, wall))
            time.sleep(self.pause_s)

    def _get(self, client):
        """(status, body, retried) of one request; (None, error, retried) when it failed."""
        retried = False
        for attempt in (0, 1):
            if client.conn is None:
                client.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                client.connections += 1
            conn = client.conn
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
            except STALE as exc:
                conn.close()
                client.conn = None
                if attempt == 0:
                    retried = True
                    continue
                return None, repr(exc), retried
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                client.conn = None
                return None, repr(exc), retried
            try:
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                client.conn = None
                return None, "reading the body: %r" % exc, retried
            if resp.will_close or not client.keepalive:
                conn.close()
                client.conn = None
            return resp.status, body, retried
        raise AssertionError("unreachable")

    # -- what it saw -------------------------------------------------------------------------
    def records(self):
        return [r for c in self.clients for r in c.records]

    def failures(self):
        return [(c.name,) + r for c in self.clients for r in c.records if not r[2]]

    def served(self):
        counts = {}
        for record in self.records():
            if record[2]:
                counts[record[3]] = counts.get(record[3], 0) + 1
        return counts

    def client_transitions(self):
        """client -> [(from, to), ...] in the order of that client's successful answers."""
        return {c.name: transitions(r[3] for r in c.successes()) for c in self.clients}

    def overall_transitions(self):
        """[(from, to), ...] over all clients' successful answers ordered by completion time.
        An answer of the version served before is not a move back when its request was sent
        before the first answer of the current version came back (it was in flight at the
        switch, on the old upstream); one sent after that is."""
        found, current, seen_at = [], None, None
        for record in sorted((r for r in self.records() if r[2]), key=lambda r: r[1]):
            version = record[3]
            if current is None:
                current, seen_at = version, record[1]
            elif version != current and record[0] >= seen_at:
                found.append((current, version))
                current, seen_at = version, record[1]
        return found

    def raw_overall_transitions(self):
        """Moves in completion order with requests in flight at the switch counted too."""
        return transitions(r[3] for r in sorted((r for r in self.records() if r[2]), key=lambda r: r[1]))

    def summary(self):
        return {"total": len(self.records()), "failed": len(self.failures()), "limit": self.limit,
                "retried": sum(1 for r in self.records() if r[4]),
                "served": self.served(), "clients": {c.name: len(c.records) for c in self.clients},
                "connections": {c.name: c.connections for c in self.clients},
                "first_failures": self.failures()[:5]}


def transitions(versions):
    found, last = [], None
    for version in versions:
        if last is not None and version != last:
            found.append((last, version))
        last = version
    return found


# -- one stack behind one Caddy, and the runs of the collection --------------------------
class Switch:
    """One run of playbooks/switch.yml: rc, the role's result, every failure message."""

    def __init__(self, run):
        self.run = run
        self.rc = run.rc
        results = run.task_results("Switch | Report the result")
        self.result = results[0].get("blue_green_switch_result") if results else None
        self.messages = failure_messages(run)
        self.changed_tasks = changed_tasks(run)
        self.text = " | ".join(self.messages) or output(run)[-6000:]


class BlueGreen:
    """A stack in the blue-green model (db up in the shared project, nothing in the colors
    yet) behind a Caddy run from its Caddyfile that points at the blue port."""

    def __init__(self, binary, name):
        self.binary = binary
        self.base = "/tmp/ops-rollback-it-" + name
        self.stack = BlueGreenStack(name, free_port(), free_port(), self.base)
        self.caddy = None
        self.releases = {}

    def setup(self):
        self.stack.create()
        self.stack.write_env("v1")
        self.stack.start_db()
        self.stack.seed()        # 1,000 rows that every switch and the rollback must leave alone
        self.caddy = CaddyfileCaddy(self.binary, os.path.join(self.base, "caddy"), "127.0.0.1:%d" % self.stack.ports["blue"])
        return self

    def close(self):
        if self.caddy is not None:
            self.caddy.stop()
        self.stack.destroy()
        shutil.rmtree(self.base, ignore_errors=True)

    def record(self, label, image_version, unhealthy=False):
        self.releases[label] = self.stack.record(label, image_version, unhealthy)
        return self.releases[label]

    # -- what the role gets ------------------------------------------------------------------
    def services(self):
        return [{"name": "web", "container_port": 8080, "blue_port": self.stack.ports["blue"],
                 "green_port": self.stack.ports["green"], "bind_ip": "127.0.0.1", "health_path": "/health",
                 "caddy_host": "127.0.0.1", "caddy_snippet": self.caddy.snippet}]

    def role_vars(self, release_id, **overrides):
        values = {
            "blue_green_switch_project_dir": self.stack.project_dir,
            "blue_green_switch_project_name": self.stack.name,
            "blue_green_switch_state_dir": self.stack.state_dir,
            "blue_green_switch_release_id": release_id,
            "blue_green_switch_services": self.services(),
            "blue_green_switch_caddy_admin_url": self.caddy.admin_url,
            "blue_green_switch_caddyfile": self.caddy.caddyfile,
            "blue_green_switch_caddy_binary": self.binary,
            "blue_green_switch_proxy_url": self.caddy.proxy_url,
            "blue_green_switch_proxy_health_path": "/health",
            "blue_green_switch_scale_down_delay": 0,
            "blue_green_switch_wait_timeout": 60,
        }
        values.update(overrides)
        return values

    def switch(self, release_id, **overrides):
        return Switch(run_playbook(SWITCH_PLAYBOOK, self.role_vars(release_id, **overrides), timeout=600))

    def rollback_vars(self, **extra):
        values = {
            "stack": self.stack.name, "project_dir": self.stack.project_dir, "state_dir": self.stack.state_dir,
            "backup_root": self.stack.backup_root, "confirm": "ROLLBACK", "strategy": "blue_green",
            "backup_volumes": False, "health_urls": [], "wait_timeout": 60,
            "blue_green": {"services": self.services(), "caddy_admin_url": self.caddy.admin_url,
                           "caddyfile": self.caddy.caddyfile, "caddy_binary": self.binary,
                           "proxy_url": self.caddy.proxy_url, "scale_down_delay": 1},
        }
        values.update(extra)
        return values

    # -- what is really there ----------------------------------------------------------------
    def served(self):
        return served_version(self.caddy.proxy_url + "/health")

    def dial_of(self, color):
        return "127.0.0.1:%d" % self.stack.ports[color]

    def active(self):
        state = self.stack.state()
        return state and state.get("active")

    def picture(self):
        """Everything a refused switch must leave as it was."""
        return {"containers": self.stack.all_containers(), "state": self.stack.state_bytes(),
                "caddy": self.caddy.config_bytes(), "writes": len(self.caddy.admin_writes()),
                "snippet": self.caddy.snippet_text()}


def idle(color):
    return "green" if color == "blue" else "blue"

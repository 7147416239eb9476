"""Blue-green switch behind Caddy: wall time and what an HTTP probe saw, the collection's
ops.rollback.blue_green_switch against the manual runbook's blue-green (start the other
color with `docker compose up --wait`, curl it, edit the Caddyfile, `caddy reload`,
`docker compose down` the old one), in one run.

The collection's stack is the runbook's web service (runbook-baseline/app images, the same
healthcheck), in the blue-green model: a `db` in the shared project, `web` in the colors,
Caddy run from a Caddyfile whose upstream is an imported snippet. Both are measured with the
same probe (4 threads, a fresh connection per request, benchmarks/probe.py = the runbook's
probe.py) on the same Caddy binary (`caddy` on PATH, as the runbook uses it). The role runs
with its defaults but scale_down_delay 0: it retires the old color in the background, so its
time, from the role's start to its end, does not include the old color's stop. The time
until the old color's containers are gone is reported beside it (the runbook's wall time
includes its `down`), and so is the whole ansible-playbook process.

Both sides start from the machine's own net.ipv4.tcp_migrate_req (0 on a fresh machine): the
role sets it to 1 itself (see docs/blue_green.md), the runbook leaves it as it is.
"""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from common import build_baseline_images, fresh_dir, median, playbook, run
from probe import Probe, version_changes
from recreate_outage import runbook_once

BASE = "/tmp/ops-rollback-bench-bluegreen"
STACK = "opsbenchbg"
COMPOSE = """services:
  db:
    image: ops-rollback-test/postgres:15
    environment: {POSTGRES_DB: app}
  web:
    image: runbook-baseline/app:${TAG}
    ports: ["127.0.0.1:${WEB_PORT}:80"]
    healthcheck: {test: ["CMD","wget","-q","-O-","http://127.0.0.1/cgi-bin/health"], interval: 1s, retries: 3}
"""
CADDYFILE = """{
\tadmin 127.0.0.1:%(admin)d
}

http://127.0.0.1:%(proxy)d {
\tbind 127.0.0.1
\treverse_proxy {
\t\timport %(snippet)s
\t}
}
"""
# The role between two timestamps taken on the controller, then its result.
PLAYBOOK = """---
- name: Benchmark one blue-green switch
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Bench | Note the start
      ansible.builtin.set_fact:
        bench_t0: "{{ now().timestamp() }}"

    - name: Bench | Switch
      ansible.builtin.include_role:
        name: ops.rollback.blue_green_switch

    - name: Bench | Report
      ansible.builtin.debug:
        msg:
          role_s: "{{ (now().timestamp() - (bench_t0 | float)) | round(3) }}"
          result: "{{ blue_green_switch_result }}"
"""


_HANDED_OUT = set()


def free_port():
    """A free port on 127.0.0.1, never one handed out before: two bind(0) calls in a row
    may get the same port, and Caddy would then listen on it twice (SO_REUSEPORT)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def caddy_binary():
    """The `caddy` the manual runbook runs (first on PATH)."""
    return shutil.which("caddy")


class Bench:
    def __init__(self):
        self.blue, self.green = free_port(), free_port()
        self.admin, self.proxy = free_port(), free_port()
        self.project_dir = BASE + "/stack"
        self.state_dir = BASE + "/state"
        self.snippet = BASE + "/caddy/web.upstream"
        self.caddyfile = BASE + "/caddy/Caddyfile"
        self.caddy = None
        self.binary = caddy_binary()

    def compose(self, project, *args, check=True):
        argv = ["docker", "compose", "--project-name", project]
        if project == STACK:
            argv[2:2] = ["--project-directory", self.project_dir]
        return run(argv + list(args), check=check)

    def setup(self):
        self.teardown()
        fresh_dir(BASE)
        os.makedirs(self.project_dir)
        os.makedirs(BASE + "/caddy")
        with open(self.project_dir + "/compose.yml", "w") as handle:
            handle.write(COMPOSE)
        self.write_env("v1")
        self.compose(STACK, "up", "--detach", "--wait", "db")
        with open(self.snippet, "w") as handle:
            handle.write("to 127.0.0.1:%d\n" % self.blue)
        with open(self.caddyfile, "w") as handle:
            handle.write(CADDYFILE % {"admin": self.admin, "proxy": self.proxy, "snippet": self.snippet})
        env = dict(os.environ, HOME=BASE + "/caddy", XDG_CONFIG_HOME=BASE + "/caddy/config",
                   XDG_DATA_HOME=BASE + "/caddy/data")
        log = open(BASE + "/caddy/caddy.log", "wb")  # pylint: disable=consider-using-with
        self.caddy = subprocess.Popen([self.binary, "run", "--config", self.caddyfile, "--adapter", "caddyfile"],  # pylint: disable=consider-using-with
                                      stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.admin), timeout=1).close()
                break
            except OSError:
                if self.caddy.poll() is not None or time.time() > deadline:
                    raise RuntimeError("Caddy did not start, see %s/caddy/caddy.log" % BASE)
                time.sleep(0.05)

    def teardown(self):
        if self.caddy is not None and self.caddy.poll() is None:
            os.killpg(self.caddy.pid, signal.SIGTERM)
            self.caddy.wait(timeout=10)
        for project in (STACK + "-blue", STACK + "-green"):
            self.compose(project, "down", "--volumes", "--remove-orphans", check=False)
        if os.path.isdir(self.project_dir):
            self.compose(STACK, "down", "--volumes", "--remove-orphans", check=False)
        tags = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                    "reference=ops-rollback/%s_*" % STACK]).stdout.split()
        if tags:
            run(["docker", "image", "rm", "--no-prune", *tags], check=False)
        shutil.rmtree(BASE, ignore_errors=True)

    def write_env(self, tag):
        with open(self.project_dir + "/.env", "w") as handle:
            handle.write("TAG=%s\nWEB_PORT=%d\n" % (tag, self.blue))

    def record(self, tag):
        self.write_env(tag)
        playbook("ops.rollback.record_release", {
            "stack": STACK, "project_dir": self.project_dir, "state_dir": self.state_dir, "version": tag, "verify": False})
        with open(self.state_dir + "/%s/ledger.json" % STACK) as handle:
            return [r for r in json.load(handle)["releases"] if r.get("version") == tag][-1]["id"]

    def switch(self, release_id):
        """(process wall s, the role's own s, its result, its slowest tasks) of one switch."""
        path = BASE + "/switch.yml"
        with open(path, "w") as handle:
            handle.write(PLAYBOOK)
        wall, proc = playbook(path, {
            "blue_green_switch_project_dir": self.project_dir, "blue_green_switch_project_name": STACK,
            "blue_green_switch_state_dir": self.state_dir, "blue_green_switch_release_id": release_id,
            "blue_green_switch_services": [{
                "name": "web", "container_port": 80, "blue_port": self.blue, "green_port": self.green,
                "bind_ip": "127.0.0.1", "health_path": "/cgi-bin/health", "caddy_host": "127.0.0.1",
                "caddy_snippet": self.snippet}],
            "blue_green_switch_caddy_admin_url": "http://127.0.0.1:%d" % self.admin,
            "blue_green_switch_caddyfile": self.caddyfile, "blue_green_switch_caddy_binary": self.binary,
            "blue_green_switch_proxy_url": "http://127.0.0.1:%d" % self.proxy,
            "blue_green_switch_proxy_health_path": "/cgi-bin/health",
            "blue_green_switch_scale_down_delay": 0, "blue_green_switch_wait_timeout": 60,
        }, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
        report = json.loads(proc.stdout[proc.stdout.index("{"):])
        msg = [h for p in report["plays"] for t in p["tasks"] if t["task"]["name"] == "Bench | Report"
               for h in t["hosts"].values()][0]["msg"]
        return wall, float(msg["role_s"]), msg["result"], slowest_tasks(report)


def slowest_tasks(report, count=6):
    """[(seconds, task name), ...] of the slowest tasks of a JSON-callback report."""
    def seconds(task):
        start, end = (datetime.datetime.fromisoformat(task["duration"][k].replace("Z", "+00:00")) for k in ("start", "end"))
        return (end - start).total_seconds()
    tasks = [(round(seconds(t["task"]), 2), t["task"]["name"]) for p in report["plays"] for t in p["tasks"]]
    return sorted(tasks, reverse=True)[:count]


def old_color_gone(t0, timeout=120):
    """Seconds from t0 until the old color (blue) has no container left, or None."""
    while time.monotonic() - t0 < timeout:
        if not run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=%s-blue" % STACK]).stdout.split():
            return round(time.monotonic() - t0, 2)
        time.sleep(0.2)
    return None


def collection_once():
    bench = Bench()
    try:
        bench.setup()
        v1 = bench.record("v1")
        bench.switch(v1)                       # v1 serves from blue; not measured
        v2 = bench.record("v2")                # the deploy flow: record, then switch
        probe = Probe("http://127.0.0.1:%d/" % bench.proxy).start()
        time.sleep(2)
        started, t0 = probe.mark(), time.monotonic()
        wall, role_s, result, slowest = bench.switch(v2)
        ended = probe.mark()
        gone_s = old_color_gone(t0)
        time.sleep(3)
        summary = probe.stop()
        return {"wall_s": round(wall, 2), "role_s": round(role_s, 2), "old_color_gone_s": gone_s, "probe": summary,
                "version_changes": version_changes(probe.events), "result": result, "slowest_tasks": slowest,
                "old_color_stopped": gone_s is not None, "window": [round(started, 3), round(ended, 3)],
                "timeline": [(round(t, 3), ok, body) for t, ok, body in probe.events]}
    finally:
        bench.teardown()


MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"


def migrate_req(value=None):
    """net.ipv4.tcp_migrate_req: its value, after setting it when `value` is given; None when
    the kernel has none. The role sets it (tasks/kernel.yml); the manual runbook does not."""
    if not os.path.exists(MIGRATE_REQ):
        return None
    if value is not None:
        with open(MIGRATE_REQ, "w") as handle:
            handle.write(value)
    with open(MIGRATE_REQ) as handle:
        return handle.read().strip()


def main(reps=3):
    """Samples of both, side by side: {"collection": [...], "runbook": [...]}. Each side starts
    from the machine's own tcp_migrate_req: the role sets it itself, the runbook runs as
    operators run it; the value is put back at the end."""
    build_baseline_images()
    if not caddy_binary():
        raise RuntimeError("no `caddy` on PATH: the manual runbook and this benchmark need it")
    samples = {"collection": [], "runbook": []}
    machine_value = migrate_req()
    try:
        for _rep in range(reps):
            migrate_req(machine_value)
            sample = collection_once()
            sample["tcp_migrate_req"] = {"before": machine_value, "after": migrate_req()}
            samples["collection"].append(sample)
            migrate_req(machine_value)
            book = runbook_once().get("blue_green_caddy_reload")
            if book:
                book["tcp_migrate_req"] = {"before": machine_value, "after": migrate_req()}
            samples["runbook"].append(book)
    finally:
        migrate_req(machine_value)
    return samples


def rows(samples):
    """The figures of the report: medians, the wall ratio (target <= 1.2x) and failed requests."""
    coll, book = samples["collection"], [s for s in samples["runbook"] if s]
    role_s = median([s["role_s"] for s in coll])
    wall_s = median([s["wall_s"] for s in coll])
    book_s = median([round(s["wall_s"], 2) for s in book])
    ratio = round(role_s / book_s, 2) if role_s is not None and book_s else None
    return {
        "collection_role_s": role_s, "collection_playbook_wall_s": wall_s, "runbook_wall_s": book_s,
        "wall_ratio": ratio, "playbook_wall_ratio": round(wall_s / book_s, 2) if wall_s is not None and book_s else None,
        "collection_failed": [s["probe"]["failed"] for s in coll], "runbook_failed": [s["probe"]["failed"] for s in book],
        "collection_requests": median([s["probe"]["total"] for s in coll]),
        "runbook_requests": median([s["probe"]["total"] for s in book]),
        "collection_version_changes": [s["version_changes"] for s in coll],
        "collection_switch_s": median([float(s["result"]["switch_s"]) for s in coll]),
        "collection_old_color_gone_s": median([s["old_color_gone_s"] for s in coll if s["old_color_gone_s"] is not None]),
        "old_color_gone_ratio": ratio_of(median([s["old_color_gone_s"] for s in coll if s["old_color_gone_s"] is not None]), book_s),
        "old_color_stopped": all(s["old_color_stopped"] for s in coll),
        "caddy": run([caddy_binary() or "caddy", "version"], check=False).stdout.strip(),
        "tcp_migrate_req": {"collection": sorted({str(s.get("tcp_migrate_req")) for s in coll}),
                            "runbook": sorted({str(s.get("tcp_migrate_req")) for s in book})},
        "target": "wall ratio <= 1.2", "met": ratio is not None and ratio <= 1.2,
        "failed_met": bool(coll) and all(s["probe"]["failed"] == 0 for s in coll),
    }


def ratio_of(value, base):
    return round(value / base, 2) if value is not None and base else None


def report_lines(bg):
    return [
        "| blue-green switch: wall time (role start to end; the old color retires in the background) | %s s | %s s | %s | <= 1.2 | %s |" % (
            bg["collection_role_s"], bg["runbook_wall_s"], bg["wall_ratio"], "yes" if bg["met"] else "**NO**"),
        "| blue-green switch: until the old color's containers are gone (runbook: its `down` included) | %s s | %s s | %s | | |" % (
            bg["collection_old_color_gone_s"], bg["runbook_wall_s"], bg["old_color_gone_ratio"]),
        "| blue-green switch: whole ansible-playbook process | %s s | | %s | | |" % (
            bg["collection_playbook_wall_s"], bg["playbook_wall_ratio"]),
        "| blue-green switch: failed requests, each repetition | %s of ~%s | %s of ~%s | | 0 | %s |" % (
            bg["collection_failed"], bg["collection_requests"], bg["runbook_failed"], bg["runbook_requests"],
            "yes" if bg["failed_met"] else "**NO**"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    SAMPLES = main(int(os.environ.get("REPS", "1")))
    print(json.dumps({"rows": rows(SAMPLES), "samples": SAMPLES}, default=str, indent=1)[:6000])

"""Recreate rollback: longest outage, failed requests and wall time seen by an HTTP probe,
the collection's ops.rollback.rollback against the manual runbook's recreate, in one run.

The collection's stack is the runbook's own (one web service, runbook-baseline/app images,
the same healthcheck) on another port, so the two are comparable.
"""
import json
import os
import tempfile
import time

from common import build_baseline_images, baseline_script, fresh_dir, playbook, run
from probe import Probe, version_changes

PORT = 18210
BASE = "/tmp/ops-rollback-bench-recreate"
STACK = "opsbenchrc"
COMPOSE = """services:
  web:
    image: runbook-baseline/app:${TAG}
    ports: ["127.0.0.1:%d:80"]
    healthcheck: {test: ["CMD","wget","-q","-O-","http://127.0.0.1/cgi-bin/health"], interval: 1s, retries: 3}
""" % PORT


def compose(*args):
    return run(["docker", "compose", "--project-directory", BASE + "/stack", "--project-name", STACK, *args])


def variables(**extra):
    base = {"stack": STACK, "project_dir": BASE + "/stack", "state_dir": BASE + "/state", "backup_root": BASE + "/backups",
            "health_urls": [{"url": "http://127.0.0.1:%d/cgi-bin/health" % PORT, "status": 200}]}
    base.update(extra)
    return base


def deploy(tag):
    with open(BASE + "/stack/.env", "w") as handle:
        handle.write("TAG=%s\n" % tag)
    compose("up", "--detach", "--wait")


def prepare():
    """The stack at v2, with v1 and v2 recorded: ready for a rollback to v1."""
    fresh_dir(BASE)
    os.makedirs(BASE + "/stack")
    with open(BASE + "/stack/compose.yml", "w") as handle:
        handle.write(COMPOSE)
    deploy("v1")
    playbook("ops.rollback.record_release", variables(version="v1"))
    deploy("v2")
    playbook("ops.rollback.record_release", variables(version="v2"))


def collection_once():
    prepare()
    probe = Probe("http://127.0.0.1:%d/" % PORT).start()
    time.sleep(2)
    started = probe.mark()
    wall, _proc = playbook("ops.rollback.rollback", variables(confirm="ROLLBACK", backup_volumes=False, reason="bench"))
    ended = probe.mark()
    time.sleep(3)
    result = probe.stop()
    with open(BASE + "/state/%s/history.jsonl" % STACK) as handle:
        entry = json.loads(handle.read().splitlines()[-1])
    compose("down", "--volumes")
    return {"wall_s": round(wall, 2), "probe": result, "version_changes": version_changes(probe.events),
            "compose_up_s": entry.get("downtime_s"), "window": [round(started, 3), round(ended, 3)],
            "timeline": [(round(t, 3), ok, body) for t, ok, body in probe.events]}


# The ports the runbook's probes use: recreate on the stack, blue-green through Caddy.
RUNBOOK_PROBE_PORTS = {"recreate": "18200", "blue_green_caddy_reload": "18300"}


def runbook_once():
    """One run of the manual runbook: its JSON line per strategy, each with the probe's
    timeline (the project's probe.py writes it to PROBE_EVENTS_DIR)."""
    with tempfile.TemporaryDirectory() as events_dir:
        out = run(["bash", baseline_script("manual_runbook.sh")], env=dict(os.environ, PROBE_EVENTS_DIR=events_dir)).stdout
        lines = {line["strategy"]: line for line in (json.loads(text) for text in out.splitlines() if text.startswith("{"))}
        for strategy, line in lines.items():
            path = os.path.join(events_dir, RUNBOOK_PROBE_PORTS.get(strategy, "none") + ".json")
            if os.path.exists(path):
                with open(path) as handle:
                    line["timeline"] = [(round(t, 3), ok, body) for t, ok, body in json.load(handle)]
    return lines


def main(reps=3):
    build_baseline_images()
    samples = {"collection": [], "runbook": [], "runbook_blue_green": []}
    for _rep in range(reps):
        samples["collection"].append(collection_once())
        book = runbook_once()
        samples["runbook"].append(book.get("recreate"))
        samples["runbook_blue_green"].append(book.get("blue_green_caddy_reload"))
    return samples


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("REPS", "1"))), default=str)[:4000])

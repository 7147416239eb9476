"""Fleet rollback: ops.rollback.rollback over 20 inventory hosts (local connection, one stack
each on the local engine, forks 10, the default serial: one host first, then the rest) against
the same rollback of 1 host, in one run. Target: 20 hosts <= 3x one host.

The same 20 hosts then roll back once more (to v2) in one batch (serial=100%): the canary
batch runs one host's whole rollback alone before the others start, by design, so the
one-batch figure shows what parallelism alone costs.

The stacks are one busybox web service each (runbook-baseline/app), with the same files on
every host, so a release has the same content-derived ID everywhere (as in a real fleet).
"""
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

from common import build_baseline_images, fresh_dir, median, playbook, run

BASE = "/tmp/ops-rollback-bench-fleet"
HOSTS = ["opsbenchfl%02d" % n for n in range(1, 22)]  # one for the single-host run, 20 for the fleet
FORKS = ["--forks", "10"]
COMPOSE = """services:
  web:
    image: runbook-baseline/app:${TAG}
    healthcheck: {test: ["CMD","wget","-q","-O-","http://127.0.0.1/cgi-bin/health"], interval: 1s, retries: 3}
"""


def project_dir(host):
    return os.path.join(BASE, host, "stack")


def compose(host, *args):
    return run(["docker", "compose", "--project-directory", project_dir(host), "--project-name", host, *args])


def deploy(host, tag):
    with open(os.path.join(project_dir(host), ".env"), "w") as handle:
        handle.write("TAG=%s\n" % tag)
    compose(host, "up", "--detach", "--wait")


def each(func):
    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(func, HOSTS))


def write_inventory():
    hosts = {h: {"stack": h, "project_dir": project_dir(h), "state_dir": os.path.join(BASE, h, "state"),
                 "backup_root": os.path.join(BASE, h, "backups")} for h in HOSTS}
    path = os.path.join(BASE, "inventory.json")
    with open(path, "w") as handle:
        json.dump({"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                           "hosts": hosts}}, handle)
    return path


def prepare():
    """Every stack at v2 with v1 and v2 recorded."""
    teardown()
    fresh_dir(BASE)
    for host in HOSTS:
        os.makedirs(project_dir(host))
        with open(os.path.join(project_dir(host), "compose.yml"), "w") as handle:
            handle.write(COMPOSE)
    inventory = write_inventory()
    for tag in ("v1", "v2"):
        each(lambda h, tag=tag: deploy(h, tag))
        playbook("ops.rollback.record_release", {"version": tag, "verify": False}, inventory=inventory, extra_args=FORKS)
    return inventory


def teardown():
    if os.path.isdir(BASE):
        each(lambda h: run(["docker", "compose", "--project-name", h, "down", "--volumes", "--remove-orphans"], check=False))
    shutil.rmtree(BASE, ignore_errors=True)


def once():
    inventory = prepare()
    try:
        rollback = {"target": "v1", "confirm": "ROLLBACK", "backup_volumes": False, "reason": "bench"}
        one_s, _proc = playbook("ops.rollback.rollback", rollback, inventory=inventory, extra_args=FORKS + ["--limit", HOSTS[0]])
        fleet_s, _proc = playbook("ops.rollback.rollback", rollback, inventory=inventory, extra_args=FORKS + ["--limit", ",".join(HOSTS[1:])])
        one_batch_s, _proc = playbook("ops.rollback.rollback", dict(rollback, target="v2", serial="100%"), inventory=inventory,
                                      extra_args=FORKS + ["--limit", ",".join(HOSTS[1:])])
    finally:
        teardown()
    return {"one_host_s": round(one_s, 2), "hosts": len(HOSTS) - 1, "fleet_s": round(fleet_s, 2), "ratio": round(fleet_s / one_s, 2),
            "one_batch_s": round(one_batch_s, 2), "one_batch_ratio": round(one_batch_s / one_s, 2)}


def main(reps=3):
    build_baseline_images()
    return [once() for _rep in range(reps)]


def rows(samples):
    ratio = median([s["ratio"] for s in samples])
    one_batch = median([s["one_batch_ratio"] for s in samples if "one_batch_ratio" in s])
    return {"one_host_s": median([s["one_host_s"] for s in samples]), "fleet_s": median([s["fleet_s"] for s in samples]),
            "hosts": samples[0]["hosts"] if samples else None, "ratio": ratio, "target": "<= 3x",
            "met": ratio is not None and ratio <= 3,
            "one_batch_s": median([s["one_batch_s"] for s in samples if "one_batch_s" in s]), "one_batch_ratio": one_batch,
            "one_batch_met": one_batch is not None and one_batch <= 3}


def report_lines(fl):
    canary = "| fleet rollback, forks 10, default serial (1 host, then the rest): %s hosts vs 1 host | %s s vs %s s | | %s | <= 3 | %s |" % (
        fl["hosts"], fl["fleet_s"], fl["one_host_s"], fl["ratio"], "yes" if fl["met"] else "**NO**")
    one_batch = "| fleet rollback, forks 10, one batch (serial=100%%): %s hosts vs 1 host | %s s vs %s s | | %s | <= 3 | %s |" % (
        fl["hosts"], fl["one_batch_s"], fl["one_host_s"], fl["one_batch_ratio"], "yes" if fl["one_batch_met"] else "**NO**")
    return [canary, one_batch]


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("REPS", "1"))), indent=1))

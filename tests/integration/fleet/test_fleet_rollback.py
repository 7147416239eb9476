"""ops.rollback.rollback over a fleet of 20 inventory hosts (conftest.py), in order:

1. refusals before any host changes: `previous` that means another release on one host, and a
   target that one host lacks; each names the host, and nothing changes anywhere;
2. serial from extra vars on ansible-core 2.19 (the compatibility venv), in check mode, and
   bad batch sizes refused;
3. all 20 hosts roll back to v1 with the default batches (one host, then the rest);
4. a host whose verification fails in the second batch: the batch stops the rollout, the hosts
   done stay rolled back and healthy, the failed one is recovered, later batches never start,
   and the report lists every host.

Every test asserts on the engine (containers, image IDs, health) and the state files.
"""
import json
import os
import re
import shutil

from ansible_run import ROOT
from conftest import HOSTS, ODD_HOST

PLAYBOOK = "ops.rollback.rollback"
ROLLOUT_PLAY = "Roll back a Docker Compose stack"
REPORT_TASK = "Fleet | Report every host's outcome"
ROW = re.compile(r"^(\S+)\s+(rolled back|failed|not started|unchanged|dry run)\s*(.*?)\s*$")


def text(run):
    """Everything the run printed, line folding undone, for phrase searches."""
    return " ".join((run.stdout + run.stderr).split())


def batches(run):
    """Hosts of each batch of the rollout play, from the JSON callback (one play entry per batch)."""
    return [sorted(play["tasks"][0]["hosts"]) for play in run.report["plays"] if play["play"]["name"] == ROLLOUT_PLAY]


def fleet_report(run):
    """host -> (outcome, detail) from the last report the run printed."""
    lines = [r for r in run.task_results(REPORT_TASK) if r.get("msg")][-1]["msg"]
    rows = {}
    for line in lines:
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def state_of(fleet):
    """What must not move when nothing changes: containers, ledgers, history, locks."""
    return {h: (s.containers(), s.ledger(), s.history(), s.lock_exists()) for h, s in fleet.stacks.items()}


def test_hosts_without_the_same_target_stop_the_run_before_any_change(fleet):
    before = state_of(fleet)
    # ODD_HOST had v3 between v1 and v2: its `previous` is v3, everyone else's is v1.
    run = fleet.run(PLAYBOOK, {"confirm": "ROLLBACK"}, json_output=False)
    assert run.rc != 0
    out = text(run)
    v3 = fleet.stacks[ODD_HOST].release("v3")["id"]
    assert "means different releases on different hosts" in out, out[-4000:]
    assert "release %s (v3) on 1 host(s): %s" % (v3, ODD_HOST) in out
    assert "on 19 host(s): opsfleet01, opsfleet02" in out
    assert state_of(fleet) == before

    # One host lost the stored files of v1: the refusal names it, and only it.
    lacking = fleet.stacks["opsfleet13"]
    v1 = lacking.release("v1")["id"]
    stored = os.path.join(lacking.state_dir, lacking.name, "releases", v1)
    shutil.move(stored, stored + ".away")
    try:
        run = fleet.run(PLAYBOOK, {"confirm": "ROLLBACK", "target": "v1"}, json_output=False)
    finally:
        shutil.move(stored + ".away", stored)
    assert run.rc != 0
    out = text(run)
    assert "Rollback refused, nothing was changed on any host: 1 of 20 host(s) can't use target v1" in out, out[-4000:]
    assert "host opsfleet13 (stack opsfleet13): the files of release %s are missing" % v1 in out
    assert not [h for h in HOSTS if h != "opsfleet13" and "host %s (" % h in out]
    assert state_of(fleet) == before


def test_serial_from_extra_vars_on_ansible_core_2_19_and_bad_batches(fleet):
    before = state_of(fleet)
    run = fleet.run(PLAYBOOK, {"target": "v1", "serial": "2"}, check=True,
                    venv_bin=os.path.join(ROOT, ".venv-compat", "bin"),
                    extra_args=["--limit", "opsfleet01,opsfleet02,opsfleet03"])
    assert run.rc == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert batches(run) == [["opsfleet01", "opsfleet02"], ["opsfleet03"]]
    report = fleet_report(run)
    assert sorted(report) == ["opsfleet01", "opsfleet02", "opsfleet03"]
    assert {outcome for outcome, _detail in report.values()} == {"dry run"}

    bad = fleet.run(PLAYBOOK, {"target": "v1", "serial": "1,0,150%", "confirm": "ROLLBACK"}, json_output=False,
                    extra_args=["--limit", "opsfleet01"])
    assert bad.rc != 0
    assert "Invalid input: serial=1,0,150%" in text(bad) and "not valid: 0, 150%" in text(bad), text(bad)[-3000:]
    assert state_of(fleet) == before


def test_all_hosts_roll_back_one_host_first_then_the_rest(fleet):
    v1 = {s.release("v1")["id"] for s in fleet.stacks.values()}
    assert len(v1) == 1, "the same content must give the same release ID on every host"
    run = fleet.run(PLAYBOOK, {"confirm": "ROLLBACK", "target": "v1", "reason": "it: fleet", "backup_volumes": False})
    assert run.rc == 0, run.stdout[-8000:] + run.stderr[-3000:]
    assert batches(run) == [["opsfleet01"], HOSTS[1:]]
    report = fleet_report(run)
    assert sorted(report) == HOSTS
    for host, s in fleet.stacks.items():
        release = s.release("v1")
        _cid, image, health = s.web()
        assert (image, health) == (release["services"]["web"]["image_id"], "healthy"), host
        assert s.ledger()["current"] == release["id"]
        assert [(h["status"], h["to"]) for h in s.history()] == [("succeeded", release["id"])], host
        assert not s.lock_exists()
        assert report[host][0] == "rolled back" and report[host][1].endswith("-> %s (v1)" % release["id"])


def test_a_failed_batch_stops_the_rollout_and_the_report_lists_every_host(fleet):
    # opsfleet04 gets a data check whose output changes with the release (the app's version
    # file): its verification fails after the execute step, so its rollback fails and recovers.
    failing = "opsfleet04"
    fleet.write_inventory({failing: {"integrity_checks": [
        {"name": "version", "service": "web", "argv": ["cat", "/app/VERSION"]}]}})
    later = HOSTS[6:]
    before = {h: (fleet.stacks[h].web(), fleet.stacks[h].history()) for h in later}
    # Batches of 1, then 5: opsfleet01 | opsfleet02-06 | opsfleet07-11 | ...; v2 named by label.
    run = fleet.run(PLAYBOOK, {"confirm": "ROLLBACK", "target": "v2", "serial": "1,5", "reason": "it: fleet batch",
                               "backup_volumes": False, "wait_timeout": 30})
    assert run.rc != 0
    assert batches(run) == [["opsfleet01"], HOSTS[1:6]]
    report = fleet_report(run)
    assert sorted(report) == HOSTS
    for host in HOSTS[:6]:
        s = fleet.stacks[host]
        _cid, image, health = s.web()
        last = s.history()[-1]
        assert health == "healthy" and not s.lock_exists(), host
        if host == failing:
            assert image == s.release("v1")["services"]["web"]["image_id"]
            assert (last["status"], last["recovered"]) == ("failed", True)
            assert report[host][0] == "failed" and report[host][1].startswith("recovered: %s is back" % s.release("v1")["id"])
        else:
            assert image == s.release("v2")["services"]["web"]["image_id"], host
            assert (last["status"], last["to"]) == ("succeeded", s.release("v2")["id"])
            assert report[host][0] == "rolled back"
    for host in later:
        s = fleet.stacks[host]
        assert (s.web(), s.history()) == before[host], host
        assert not s.lock_exists()
        assert report[host] == ("not started", "")
    failures = [r for r in run.task_results("Fleet | Fail this host when its rollback failed "
                                            "(max_fail_percentage decides whether the rollout goes on)") if r.get("failed")]
    assert len(failures) == 1 and "Rollback of stack %s from" % failing in failures[0]["msg"]
    assert json.dumps(run.report).count("FAILED at step") >= 1

"""Faults other than a killed run, each injected for real, with the outcome and the state of
the real system asserted afterwards. Faults that another suite already proves are listed in
summary.py (REFERENCED) with the test that proves them, and reported in the summary table.

- Netlify 429, 500 and a timeout, each for good (every retry gets it), through the emulator
  (tests/netlify_emulator): a clear error naming the cause, nothing written, the published
  deploy unchanged. 401, 404 and the retried-and-recovered 429/500/timeout: the Netlify suite
  (referenced in summary.py).
- target port taken by another process (recreate): refused before any change.
- backup manifest missing, archive corrupted: the restore refuses, the rows stay.
- dockerd restarted during verify: restarting dockerd stops every container on the machine,
  so it runs only when no container but the test's own exists (a CI machine), or with
  OPS_ROLLBACK_FAULTS_DOCKERD=1; OPS_ROLLBACK_FAULTS_DOCKERD=0 always skips it.
"""
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from ansible_run import ROOT, run_playbook
from kill_helpers import INVENTORY, playbook_env, banner_of
from stack import SECRET_PREFIX, Stack, docker, record

INTEGRATION = os.path.join(ROOT, "tests", "integration")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text_of(run):
    return " ".join((run.stdout + run.stderr).split())


# -- Netlify through the emulator -------------------------------------------------------
NETLIFY = _load("opsfault_netlify_helpers", os.path.join(INTEGRATION, "netlify", "conftest.py"))
RESTORE = "ops.rollback.netlify_deploy_restore"


@pytest.fixture(scope="module")
def emulator():
    with NETLIFY.Emulator(tokens=[NETLIFY.TOKEN], max_per_page=4) as server:
        yield NETLIFY.EmulatorControl(server)


def restore_task(control, tmp_path, args, token):
    """One netlify_deploy_restore task against the emulator: (run, task result)."""
    args = dict({"api_url": control.api_url, "retry_delay": 0.05, "max_retries": 2, "timeout": 0.5}, **args)
    play = [{"name": "One Netlify restore", "hosts": "localhost", "gather_facts": False, "connection": "local",
             "tasks": [{"name": "Restore", RESTORE: args, "register": "result", "ignore_errors": True}]}]
    path = tmp_path / "netlify.yml"
    path.write_text(json.dumps(play))
    run = run_playbook(str(path), env={"NETLIFY_AUTH_TOKEN": token}, verbosity=3, timeout=120)
    for secret in (token, NETLIFY.TOKEN):
        assert secret not in run.stdout + run.stderr, "the token leaked"
    results = run.task_results("Restore")
    assert results, run.stdout[-3000:] + run.stderr[-3000:]
    return run, results[0]


SITE = NETLIFY.SITE_ID
NETLIFY_FAULTS = [
    # (id, fault injected on every GET of the site, what the error must say)
    ("429-for-good", {"status": 429, "retry_after": 0}, ["HTTP 429", "gave up after 3 attempts", "Nothing was changed"]),
    ("500-for-good", {"status": 500}, ["HTTP 500", "gave up after 3 attempts", "Nothing was changed"]),
    ("timeout-for-good", {"delay": 2.0}, ["no answer within 0.5 s", "gave up after 3 attempts", "Nothing was changed"]),
]


@pytest.mark.parametrize("ident,fault,expected", NETLIFY_FAULTS, ids=[f[0] for f in NETLIFY_FAULTS])
def test_netlify_fault_fails_clearly_and_writes_nothing(emulator, tmp_path, ident, fault, expected):
    emulator.reset()
    published = emulator.published()
    target = next(d["id"] for d in emulator.site()["deploys"] if d["id"] != published and d["state"] == "ready")
    emulator.fault(method="GET", path="^/api/v1/sites/[^/]+$", times=10, **fault)
    _run, result = restore_task(emulator, tmp_path, {"site_id": SITE, "deploy_id": target}, NETLIFY.TOKEN)
    assert result.get("failed") is True, (ident, result)
    message = result["msg"]
    for phrase in expected:
        assert phrase in message, (phrase, message)
    assert emulator.writes() == [], emulator.writes()
    assert emulator.published() == published
    assert emulator.violations()["count"] == 0, emulator.violations()


# -- a recreate stack: port taken, backups damaged ---------------------------------------
NAME = "opsfault-of"
PORT, OTHER_PORT = 18801, 18802


@pytest.fixture(scope="module")
def of_stack():
    """v1 recorded on OTHER_PORT, then v2 on PORT (runs); 1,000 rows."""
    stack = Stack(NAME, OTHER_PORT, "/tmp/ops-rollback-it-" + NAME)
    try:
        stack.create()
        stack.deploy("v1")
        stack.seed()
        record(stack, "v1-other-port")
        stack.port = PORT
        stack.deploy("v2")
        record(stack, "v2")
        stack.seeded_rows = stack.rows()
        yield stack
    finally:
        stack.destroy()


def test_target_port_taken_by_another_process_is_refused_before_any_change(of_stack):
    stack = of_stack
    before = stack.snapshot()
    history = stack.history()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", OTHER_PORT))
        squatter.listen(1)
        variables = stack.vars(target="v1-other-port", confirm="ROLLBACK", backup_volumes=False)
        run = run_playbook("ops.rollback.rollback", variables, json_output=False)
    finally:
        squatter.close()
    text = text_of(run)
    assert run.rc != 0
    assert "refused, nothing was changed" in text, text[-4000:]
    assert "port 127.0.0.1:%d/tcp of service web is taken by another process" % OTHER_PORT in text, text[-4000:]
    assert stack.snapshot() == before and stack.history() == history and not stack.lock_exists()
    assert stack.version() == "v2" and stack.rows() == stack.seeded_rows


def backup_now(stack):
    run = run_playbook("ops.rollback.backup", stack.vars(backup_volumes=True), json_output=True)
    assert run.rc == 0, run.stdout[-4000:]
    result = run.task_results("Register the result as backup_result")
    path = (result[0].get("ansible_facts") or {}).get("backup_result", {}).get("path") if result else None
    if not path:
        base = os.path.join(stack.backup_root, stack.name)
        path = os.path.join(base, sorted(d for d in os.listdir(base) if not d.endswith(".partial"))[-1])
    return path


def corrupt_manifest(path):
    os.unlink(os.path.join(path, "manifest.json"))
    return "manifest"


def corrupt_archive(path):
    archives = sorted(os.path.join(root, f) for root, _d, files in os.walk(path) for f in files if ".tar" in f)
    assert archives, os.listdir(path)
    victim = max(archives, key=os.path.getsize)
    with open(victim, "r+b") as handle:
        handle.seek(os.path.getsize(victim) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return os.path.basename(victim)


@pytest.mark.parametrize("damage", [corrupt_manifest, corrupt_archive], ids=["manifest-missing", "archive-corrupted"])
def test_damaged_backup_is_refused_by_the_restore(of_stack, damage):
    stack = of_stack
    path = backup_now(stack)
    named = damage(path)
    before = stack.snapshot()
    run = run_playbook("ops.rollback.restore", stack.vars(backup_id=os.path.basename(path), confirm="RESTORE"),
                       json_output=False)
    text = text_of(run)
    assert run.rc != 0, text[-4000:]
    assert named in text, (named, text[-4000:])
    assert SECRET_PREFIX not in text
    assert stack.snapshot() == before
    assert stack.rows() == stack.seeded_rows and stack.version() == "v2"
    assert not stack.lock_exists()
    shutil.rmtree(path, ignore_errors=True)


# -- dockerd restarted during verify (when no other container is on the machine) ---------------------------------------------
def restart_dockerd():
    """Stop the running dockerd (SIGTERM, as a service manager would) and start it again the
    way scripts/setup/dockerd.sh does."""
    pids = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=False).stdout.split()
    assert len(pids) == 1, "expected one dockerd, found %s" % pids
    os.kill(int(pids[0]), signal.SIGTERM)
    deadline = time.monotonic() + 60
    while os.path.exists("/proc/%s" % pids[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    with open("/var/log/ops-rollback-dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # pylint: disable=consider-using-with
    deadline = time.monotonic() + 60
    while docker("info", check=False).returncode != 0:
        assert time.monotonic() < deadline, "dockerd did not come back"
        time.sleep(0.5)


def skip_unless_dockerd_may_restart(project):
    """Restarting dockerd stops every container: only when none but the project's exists, or
    when OPS_ROLLBACK_FAULTS_DOCKERD says so."""
    choice = os.environ.get("OPS_ROLLBACK_FAULTS_DOCKERD")
    if choice == "1":
        return
    if choice == "0":
        pytest.skip("OPS_ROLLBACK_FAULTS_DOCKERD=0")
    listing = docker("ps", "--all", "--format", '{{.Names}} {{.Label "com.docker.compose.project"}}').stdout.split("\n")
    others = sorted(line.split()[0] for line in listing if line.strip() and line.split()[1:] != [project])
    if others:
        pytest.skip("restarting dockerd would stop containers that are not the test's: %s "
                    "(OPS_ROLLBACK_FAULTS_DOCKERD=1 runs it anyway)" % ", ".join(others[:5]))


def test_dockerd_restarted_during_verify_is_recovered(of_stack):
    stack = of_stack
    skip_unless_dockerd_may_restart(NAME)
    origin_id = stack.release("v2")["id"]
    argv = [shutil.which("ansible-playbook", path=playbook_env()["PATH"]), "ops.rollback.rollback", "-i", INVENTORY,
            "-e", json.dumps(stack.vars(target="v1-other-port", confirm="ROLLBACK", backup_volumes=False, wait_timeout=60))]
    proc = subprocess.Popen(argv, cwd=ROOT, env=playbook_env(), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    lines, restarted = [], False
    for line in proc.stdout:
        lines.append(line)
        name = banner_of(line)
        if not restarted and name and "Verify | Check the stack on the target release" in name:
            restart_dockerd()
            restarted = True
    proc.wait(timeout=600)
    text = " ".join("".join(lines).split())
    assert restarted, text[-4000:]
    # the containers were stopped under the verify: it fails, the recovery starts v2 again
    assert proc.returncode != 0, text[-4000:]
    assert "FAILED at step" in text and "is back and verified healthy" in text, text[-6000:]
    assert stack.version() == "v2"
    assert stack.rows() == stack.seeded_rows
    assert not stack.lock_exists()
    last = stack.history()[-1]
    assert last["status"] == "failed" and last["recovered"] is True and last["from"] == origin_id, last

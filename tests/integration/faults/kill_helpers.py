"""Helpers of the fault-injection suite: run ansible-playbook with its live output read line
by line and SIGKILL its whole process group the moment the banner of a chosen task appears.

A kill point is the name of a task (or a part of it, as shown in `TASK [...]`): when the
banner of that task is printed, every task before it has finished and the named task has not
(or has only just) begun. `also` adds a condition polled after the banner (for example: the
ledger marks the execute step as in progress) so that a kill can land inside a long task.

ansible-core 2.19+ runs each worker (the process that runs one task) in a session of its own:
SIGKILL of ansible-playbook's process group leaves the worker running the current task to its
end, an orphan. `tree=False` does exactly that (what `kill -9 -PGID` does to an operator's
run); `tree=True` (the default) also kills every descendant, workers and the commands they
run, as a crashed controller or a killed CI job does, so the named task is cut where it is.
"""
import json
import os
import signal
import subprocess
import threading
import time

from ansible_run import ROOT, VENV_BIN

INVENTORY = os.path.join(ROOT, "tests", "integration", "inventory.yml")
LOG_DIR = os.path.join("/tmp", "ops-rollback-faults-logs")


class KillPoint:
    """Where to kill: the banner of task `task`, then (optionally) once `also()` is true."""

    def __init__(self, ident, task, expect, also=None, note="", nth=1, tree=True):
        self.ident = ident
        self.tree = tree
        self.task = task
        self.nth = nth
        self.expect = expect           # "target" or "origin": the release the re-run converges to
        self.also = also
        self.note = note

    def __repr__(self):
        return self.ident


def playbook_env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".cache", "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
    })
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    return env


def banner_of(line):
    """The task name of a `TASK [name] ****` banner line (role prefix kept), or None."""
    if line.startswith("TASK [") and "]" in line:
        return line[len("TASK ["):line.rindex("]")]
    return None


class KilledRun:
    def __init__(self, killed, banner, lines, rc):
        self.killed = killed           # True when the kill point was reached and the group killed
        self.banner = banner
        self.lines = lines
        self.rc = rc

    @property
    def text(self):
        return "".join(self.lines)


def run_and_kill(playbook, extra_vars, point, timeout=300, log_name=None):
    """Run `playbook` and SIGKILL its process group at `point`; returns a KilledRun."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), playbook, "-i", INVENTORY, "-e", json.dumps(extra_vars)]
    proc = subprocess.Popen(argv, cwd=ROOT, env=playbook_env(), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    lines, state = [], {"killed": False, "banner": None, "seen": 0}
    watchdog = threading.Timer(timeout, lambda: _kill(proc))
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            name = banner_of(line)
            if name is not None and point.task in name:
                state["seen"] += 1
                if state["seen"] < point.nth:
                    continue
                state["banner"] = name
                if point.also is not None:
                    deadline = time.monotonic() + 120
                    while proc.poll() is None and not point.also() and time.monotonic() < deadline:
                        time.sleep(0.02)
                if proc.poll() is None:
                    if point.tree:
                        _kill_tree(proc.pid)
                    _kill(proc)
                    state["killed"] = True
                    lines.append("=== SIGKILL of the process group at %s ===\n" % name)
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        _kill(proc)
        proc.stdout.close()
    if log_name:
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, log_name + ".log"), "w", encoding="utf-8") as handle:
            handle.write("".join(lines))
    return KilledRun(state["killed"], state["banner"], lines, proc.returncode)


def _kill(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)


def _children(pid):
    found = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid), encoding="ascii") as handle:
                found.extend(int(c) for c in handle.read().split())
    except OSError:
        pass
    return found


def _kill_tree(root):
    """Stop the process tree under `root` (so nothing new forks), then SIGKILL all of it."""
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        todo.extend(_children(pid))
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def banners(text):
    return [b for b in (banner_of(line) for line in text.splitlines(True)) if b is not None]


def assert_recorded(stack, origin_id, target_id, history_before, strategy):
    """After the re-run: the lock released, the ledger on the target with no interrupted
    rollback left, and exactly one new history entry that says the rollback succeeded."""
    assert not stack.lock_exists()
    ledger = stack.ledger()
    assert ledger["current"] == target_id and "in_progress" not in ledger, ledger.get("in_progress")
    history = stack.history()
    assert len(history) == history_before + 1, history[history_before:]
    last = history[-1]
    assert (last["status"], last["from"], last["to"], last["strategy"]) == ("succeeded", origin_id, target_id, strategy), last

"""Runs ansible-playbook from the checkout for integration tests and returns what it did.

Tests call `run_playbook(...)` and assert on the real system afterwards; the JSON callback
gives each task's result so a test can also check `changed` without parsing text.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


class PlaybookRun:
    def __init__(self, proc, report):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.report = report

    def task_results(self, name):
        """Results (one per host) of every task whose name is `name`, in run order."""
        found = []
        for play in (self.report or {}).get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name:
                    found.extend(task["hosts"].values())
        return found

    @property
    def stats(self):
        return (self.report or {}).get("stats", {})


def run_playbook(playbook, extra_vars=None, check=False, diff=False, verbosity=0, env=None,
                 inventory=None, json_output=True, timeout=900, extra_args=(), venv_bin=None):
    """Run a playbook (path or FQCN) against localhost unless `inventory` says otherwise;
    with the ansible-playbook of `venv_bin` (e.g. .venv-compat/bin) instead of this venv's."""
    bin_dir = venv_bin or VENV_BIN
    argv = [os.path.join(bin_dir, "ansible-playbook"), playbook]
    argv += ["-i", inventory or os.path.join(ROOT, "tests", "integration", "inventory.yml")]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    argv += list(extra_args)
    run_env = dict(os.environ)
    run_env.update({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".cache", "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": bin_dir + os.pathsep + run_env.get("PATH", ""),
    })
    if json_output:
        run_env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    run_env.update(env or {})
    proc = subprocess.run(argv, cwd=ROOT, env=run_env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    report = None
    if json_output:
        try:
            report = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            report = None
    return PlaybookRun(proc, report)

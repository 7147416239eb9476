"""Shared by the benchmarks: paths, running the collection's playbooks, the baseline scripts."""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(ROOT, "tests", "integration", "inventory.yml")


def baseline_script(name):
    """The project's copy of a manual-runbook script, else the shared original."""
    for folder in (os.path.join(HERE, "baseline"), os.path.join(ROOT, "..", "shared", "baseline")):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(name)


def run(argv, **kwargs):
    check = kwargs.pop("check", True)
    return subprocess.run(argv, capture_output=True, text=True, check=check, **kwargs)


def playbook(name, extra_vars, check=False, env=None, inventory=INVENTORY, extra_args=()):
    """Run one of the collection's playbooks (against localhost unless another inventory is
    given); returns (seconds, process)."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), name, "-i", inventory, "-e", json.dumps(extra_vars), *extra_args]
    if check:
        argv.append("--check")
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    run_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=run_env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s\n%s" % (name, proc.stdout[-4000:], proc.stderr[-2000:]))
    return time.monotonic() - started, proc


def build_baseline_images():
    run(["bash", baseline_script("build_images.sh")])


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700)
    return path


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

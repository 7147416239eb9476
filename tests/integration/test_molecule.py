"""Every Molecule scenario under molecule/, run with `molecule test` on the real engine.

Each scenario runs on the current venv (ansible-core 2.21, community.docker 5); the ones in
COMPAT_SCENARIOS also run on the compatibility venv (ansible-core 2.19, community.docker 4.8).
"""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "molecule", "*", "molecule.yml")))
COMPAT_SCENARIOS = ["verify"]
VENVS = {"current": os.path.join(ROOT, ".venv"), "compat": os.path.join(ROOT, ".venv-compat")}


def run_molecule(scenario, venv):
    bin_dir = os.path.join(VENVS[venv], "bin")
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], ANSIBLE_FORCE_COLOR="0",
               PY_COLORS="0", NO_COLOR="1", ANSIBLE_NOCOLOR="1")
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([os.path.join(bin_dir, "molecule"), "test", "--scenario-name", scenario],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=1800)


PARAMS = [pytest.param(s, "current", id=s) for s in SCENARIOS] + [
    pytest.param(s, "compat", id=s + "-compat", marks=pytest.mark.compat) for s in COMPAT_SCENARIOS if s in SCENARIOS]


@pytest.mark.parametrize(("scenario", "venv"), PARAMS)
def test_molecule_scenario(scenario, venv):
    proc = run_molecule(scenario, venv)
    assert proc.returncode == 0, "molecule test -s %s (%s venv) failed:\n%s\n%s" % (
        scenario, venv, proc.stdout[-30000:], proc.stderr[-10000:])

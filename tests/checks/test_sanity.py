"""ansible-test sanity on a copy at ansible_collections/ops/rollback, with the current venv
(ansible-core 2.21) and the compatibility venv (ansible-core 2.19)."""
import os
import subprocess

import pytest

from repo_copy import ROOT, copy_collection

VENVS = {
    "current": (os.path.join(ROOT, ".venv"), "3.13"),
    "compat": (os.path.join(ROOT, ".venv-compat"), "3.11"),
}


@pytest.mark.parametrize("venv", sorted(VENVS))
def test_ansible_test_sanity(venv):
    venv_dir, python = VENVS[venv]
    dest = copy_collection(os.path.join(ROOT, ".cache", "sanity-" + venv))
    env = dict(os.environ, PATH=os.path.join(venv_dir, "bin") + os.pathsep + os.environ["PATH"], NO_COLOR="1")
    env.pop("PIP_CONFIG_FILE", None)
    proc = subprocess.run([os.path.join(venv_dir, "bin", "ansible-test"), "sanity", "--requirements",
                           "--python", python, "--color", "no"],
                          cwd=dest, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-8000:]
    # A run that found nothing to test passes too; make sure it tested the collection.
    assert "All targets skipped" not in proc.stdout + proc.stderr, proc.stderr[-4000:]

"""ansible-lint, production profile, no skip list (.ansible-lint)."""
import os
import subprocess
import sys

from repo_copy import ROOT


def test_ansible_lint_production_profile():
    lint = os.path.join(os.path.dirname(sys.executable), "ansible-lint")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"), NO_COLOR="1")
    proc = subprocess.run([lint, "--profile", "production", "--nocolor"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]

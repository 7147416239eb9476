import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rollback"))

from stack import Stack, record  # noqa: E402  (needs the path above)


class GuardStack(Stack):
    """The rollback tests' Stack with the web service only (files/compose.yml)."""

    def create(self):
        self.destroy()
        os.makedirs(self.project_dir, mode=0o700)
        shutil.copy(os.path.join(HERE, "files", "compose.yml"), os.path.join(self.project_dir, "compose.yml"))

    def vars(self, **extra):
        extra.setdefault("integrity_checks", [])
        extra.setdefault("backup_volumes", False)
        extra.setdefault("guard_verify_timeout", 5)
        extra.setdefault("wait_timeout", 30)
        extra.setdefault("health_urls", [{"url": "http://127.0.0.1:%d/health" % self.port, "status": 200, "retries": 2}])
        return super().vars(**extra)


@pytest.fixture
def stack():
    """v1 and v2 recorded healthy, then v3 deployed broken (its /health answers 404) and, as
    record_release refuses an unhealthy stack, not recorded: v3 runs."""
    s = GuardStack("opsguard", 18700, "/tmp/ops-rollback-it-opsguard")
    s.create()
    s.deploy("v1")
    record(s, "v1")
    s.deploy("v2")
    record(s, "v2")
    s.deploy("v3", unhealthy=True, wait=False)
    yield s
    s.destroy()

"""The bad-input suite's test bed: one healthy stack (v1 and v2 recorded, v2 running, one
backup) shared by every case, a reader of everything a case must leave as it was, and the
Netlify emulator. Ports 18780-18781; Compose projects start with `opsbad`."""
import hashlib
import os
import stat
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
for _sub in ("rollback",):
    if os.path.join(INTEGRATION, _sub) not in sys.path:
        sys.path.append(os.path.join(INTEGRATION, _sub))

from ansible_run import ROOT, run_playbook  # noqa: E402
from stack import Stack, docker, record  # noqa: E402
from suite_summary import SuiteSummary  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netlify_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

NAME = "opsbadin"
WEB_PORT = 18780
EMULATOR_PORT = 18781
TOKEN = "nfp_BADINPUT_TOKEN_0123456789abcdef"

SUMMARY = SuiteSummary("bad-input", "bad_input/test_bad_input.py")


def pytest_runtest_logreport(report):
    SUMMARY.add(report)


def pytest_terminal_summary(terminalreporter):
    SUMMARY.write(terminalreporter)


def tree(base):
    """relative path -> (kind, mode, sha256) of everything under base (project, state, backups)."""
    found = {}
    for top, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(top, name)
            info = os.lstat(path)
            digest = None
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            found[os.path.relpath(path, base)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), digest)
    return found


class BadInputBed:
    def __init__(self):
        self.stack = Stack(NAME, WEB_PORT, "/tmp/ops-rollback-it-" + NAME)
        self.base = self.stack.base

    def setup(self):
        s = self.stack
        s.create()
        s.deploy("v1")
        s.seed()
        record(s, "v1", verify=False)
        s.deploy("v2")
        record(s, "v2", verify=False)
        run = run_playbook("ops.rollback.backup", {"stack": s.name, "project_dir": s.project_dir,
                                                   "backup_root": s.backup_root}, json_output=False)
        assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
        return self

    def destroy(self):
        self.stack.destroy()
        for project in (NAME + "-blue", NAME + "-green"):
            docker("compose", "--project-name", project, "down", "--volumes", "--timeout", "2", check=False)

    def picture(self):
        """Everything a refused case must leave as it was: the stack's containers (and any of
        the color projects), its files, the state dir and the backups, with modes and checksums."""
        ids = docker("ps", "-a", "--quiet", "--no-trunc", "--filter", "label=com.docker.compose.project").stdout.split()
        projects = {}
        if ids:
            out = docker("inspect", "--format",
                         '{{index .Config.Labels "com.docker.compose.project"}} {{.Id}} {{.Image}} {{.State.Status}} {{.RestartCount}}',
                         *ids, check=False).stdout
            for line in out.splitlines():
                parts = line.split()
                if parts and parts[0].startswith("opsbad"):
                    projects.setdefault(parts[0], set()).add(tuple(parts[1:]))
        return {"containers": projects, "tree": tree(self.base),
                "escape": sorted(n for n in os.listdir("/tmp") if n.startswith("opsbad-escape"))}


@pytest.fixture(scope="module")
def bed():
    b = BadInputBed()
    try:
        yield b.setup()
    finally:
        b.destroy()


@pytest.fixture(scope="module")
def emulator():
    with Emulator(tokens=[TOKEN], port=EMULATOR_PORT, max_per_page=4) as server:
        yield server


@pytest.fixture(scope="session")
def netlify_token():
    return TOKEN

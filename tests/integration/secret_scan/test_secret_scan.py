"""Secret scan: every playbook runs at -vvv with --diff on real stacks whose .env holds
recognisable values, and the Netlify playbook with a recognisable token (through the emulator).
None of them may appear in stdout, stderr, the ledger, history, reports, lock, blue-green state,
backup manifests or the Netlify history file.

Decided exceptions, each a copy of the deployed configuration that a rollback or restore needs
as it was: the `.env` copies (release files, backup config), the resolved Compose config
(`resolved.json` of a release, `compose.resolved.yml` of a backup: Compose interpolates .env
into it) and the compose file a blue-green color runs from (`colors/<color>/compose.json`,
generated from the resolved config). They must be 0600 in 0700 dirs, like every file and dir
under the state dir and the backup root.

One test per scanned run (its output) plus one per tree (contents and modes); the suite's
conftest prints the summary table.
"""
import json
import os
import stat
import sys

import pytest
from ansible_run import ROOT, run_playbook
from bg_helpers import BlueGreen, BlueGreenStack
from caddy_helpers import DEBIAN_CADDY, CaddyfileCaddy, require_caddy
from stack import SECRET_PREFIX, Stack

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netlify_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position
from netlify_emulator.fixture_ids import HEADER_FIX, SITE_ID  # noqa: E402  pylint: disable=wrong-import-position

TOKEN = "nfp_SECRETSCAN_TOKEN_1234567890"
ENV_SECRET = "SECRETSCAN_ENV_APP_%s_4242"      # APP_SECRET, used by the web service
ENV_UNUSED = "SECRETSCAN_ENV_DBPASS_9191"       # in .env only, referenced by nothing
SECRETS = [TOKEN, ENV_UNUSED, "SECRETSCAN_ENV_APP_", SECRET_PREFIX]
# Copies of the deployed configuration (see the module docstring): checked for modes only.
CONFIG_COPIES = (".env", "resolved.json", "compose.resolved.yml")


def is_config_copy(path):
    name = os.path.basename(path)
    return name in CONFIG_COPIES or (name == "compose.json" and os.path.basename(os.path.dirname(os.path.dirname(path))) == "colors")


def write_secret_env(stack, version, image="ops-rollback-test/app", unhealthy=False):
    env = ("APP_IMAGE=%s\nAPP_VERSION=%s\nWEB_PORT=%d\nAPP_SECRET=%s\nDB_PASSWORD=%s\nAPP_UNHEALTHY=%d\n"
           % (image, version, stack.port, ENV_SECRET % version, ENV_UNUSED, 1 if unhealthy else 0))
    path = os.path.join(stack.project_dir, ".env")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(env)


class SecretStack(Stack):
    write_env = write_secret_env


class SecretBlueGreenStack(BlueGreenStack):
    write_env = write_secret_env


class SecretBlueGreen(BlueGreen):
    """bg_helpers.BlueGreen on this suite's ports."""

    def __init__(self, binary):  # pylint: disable=super-init-not-called
        self.binary = binary
        self.base = "/tmp/ops-rollback-it-opsbadbg"
        self.stack = SecretBlueGreenStack("opsbadbg", 18792, 18793, self.base)
        self.caddy = None
        self.releases = {}

    def setup(self):
        self.stack.create()
        self.stack.write_env("v1")
        self.stack.start_db()
        self.caddy = CaddyfileCaddy(self.binary, os.path.join(self.base, "caddy"), "127.0.0.1:18792",
                                    admin_port=18794, proxy_port=18795)
        return self


RUNS = {}      # name -> PlaybookRun, filled by the fixture in run order
TREES = {}     # name -> base dir to scan


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every playbook at -vvv --diff, in the order an operator would run them."""
    tmp = tmp_path_factory.mktemp("secret")
    s = SecretStack("opsbadsec", 18790, "/tmp/ops-rollback-it-opsbadsec")
    emulator = Emulator(tokens=[TOKEN], port=18791).start()
    bg = None
    try:
        s.create()
        s.deploy("v1")
        s.seed()

        def play(name, playbook, extra, check=False, env=None, expect_rc=0):
            run = run_playbook("ops.rollback." + playbook, extra, check=check, diff=True, verbosity=3,
                               json_output=False, env=env, timeout=600)
            assert run.rc == expect_rc, (name, run.stdout[-6000:], run.stderr[-3000:])
            RUNS[name] = run

        play("record_release v1", "record_release", s.vars(version="v1"))
        s.deploy("v2")
        play("record_release v2", "record_release", s.vars(version="v2"))
        play("verify", "verify", s.vars())
        play("backup", "backup", s.vars())
        play("restore --check", "restore", s.vars(), check=True)
        # PostgreSQL logs a FATAL line while a probe hits it during its start: not this suite's subject
        play("restore", "restore", s.vars(confirm="RESTORE", verify_log_allow_patterns=["database system is starting up"]))
        play("rollback --check", "rollback", s.vars(), check=True)
        play("rollback", "rollback", s.vars(confirm="ROLLBACK", reason="secret scan"))
        # healthy after the rollback: the guard verifies and reports (the restore's PostgreSQL start line again)
        play("guard", "guard", s.vars(verify_log_allow_patterns=["database system is starting up"]))
        play("history", "history", {"stack": s.name, "state_dir": s.state_dir})
        TREES["state dir"] = s.state_dir
        TREES["backup root"] = s.backup_root

        netlify = {"site_id": SITE_ID, "api_url": emulator.api_url, "history_file": str(tmp / "netlify-history.jsonl")}
        play("netlify_rollback --check", "netlify_rollback", dict(netlify, deploy_id=HEADER_FIX), check=True,
             env={"NETLIFY_AUTH_TOKEN": TOKEN})
        play("netlify_rollback", "netlify_rollback", dict(netlify, deploy_id=HEADER_FIX, confirm="ROLLBACK", reason="scan"),
             env={"NETLIFY_AUTH_TOKEN": TOKEN})
        TREES["netlify history"] = str(tmp)

        bg = SecretBlueGreen(require_caddy(DEBIAN_CADDY)).setup()
        release = bg.record("v1", "v1")
        vars_ = bg.rollback_vars(release=release)
        for key in ("confirm", "strategy", "backup_volumes", "health_urls", "backup_root"):
            vars_.pop(key)
        play("blue_green_deploy", "blue_green_deploy", vars_)
        TREES["blue-green state dir"] = bg.stack.state_dir
        yield RUNS
    finally:
        emulator.stop()
        if bg is not None:
            bg.close()
        s.destroy()


def test_every_playbook_ran(runs):
    playbooks = {name.split()[0] for name in runs}
    wanted = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(ROOT, "playbooks")) if f.endswith(".yml")}
    assert wanted <= playbooks, "not scanned: %s" % sorted(wanted - playbooks)


RUN_NAMES = ["record_release v1", "record_release v2", "verify", "backup", "restore --check", "restore",
             "rollback --check", "rollback", "netlify_rollback --check", "netlify_rollback", "blue_green_deploy"]


@pytest.mark.parametrize("name", RUN_NAMES)
def test_output_has_no_secret(runs, name):
    run = runs[name]
    assert "ESTABLISH LOCAL CONNECTION" in run.stdout, "not verbose: " + run.stdout[-2000:]
    for secret in SECRETS:
        assert secret not in run.stdout, "%s leaked to stdout of %s" % (secret, name)
        assert secret not in run.stderr, "%s leaked to stderr of %s" % (secret, name)


def walk(base):
    for top, dirs, files in os.walk(base):
        for d in dirs:
            yield os.path.join(top, d), True
        for f in files:
            yield os.path.join(top, f), False


@pytest.mark.parametrize("tree", ["state dir", "backup root", "blue-green state dir", "netlify history"])
def test_files_have_no_secret_and_private_modes(runs, tree):
    base = TREES[tree]
    found = list(walk(base))
    assert found, "nothing was written under %s" % base
    problems = []
    for path, is_dir in found:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if tree != "netlify history":
            want = 0o700 if is_dir else 0o600
            if mode != want:
                problems.append("%s is %o, not %o" % (path, mode, want))
        if is_dir or is_config_copy(path):
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        if path.endswith(".zst"):
            continue  # volume archives and dumps: the stack's data, not its config
        for secret in SECRETS:
            if secret.encode() in data:
                problems.append("%s contains %s" % (path, secret))
    assert not problems, "\n".join(problems)
    if tree == "state dir":
        names = {os.path.basename(p) for p, _d in found}
        assert {"ledger.json", "history.jsonl"} <= names, names  # the rollback wrote its records
        assert any(p.endswith(".md") for p, _d in found), "no report written"
    if tree == "netlify history":
        lines = [json.loads(line) for line in open(os.path.join(base, "netlify-history.jsonl"))]
        assert lines and lines[-1]["outcome"] == "published"

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Netlify emulator for the integration tests, and helpers to run the playbook and modules.

One emulator serves the whole session (127.0.0.1, a free port, pages of 4 deploys so that every
listing follows Link headers). Each test starts from the fixture and must not send a single
request that Netlify's OpenAPI definition does not allow.
"""
import json
import os
import secrets
import sys
import urllib.request

import pytest

from ansible_run import ROOT, run_playbook

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netlify_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position
from netlify_emulator.fixture_ids import SITE_ID  # noqa: E402  pylint: disable=wrong-import-position

TOKEN = "nfp_test_" + secrets.token_hex(16)
PLAYBOOK = "ops.rollback.netlify_rollback"


class EmulatorControl:
    """Reads and steers the emulator through its control endpoints (outside /api/v1)."""

    token = TOKEN

    def __init__(self, emulator):
        self.url = emulator.url
        self.api_url = emulator.api_url

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self):
        self.call("POST", "/_emulator/reset")

    def state(self):
        return self.call("GET", "/_emulator/state")

    def site(self, site_id=SITE_ID):
        return self.state()["sites"][site_id]

    def published(self, site_id=SITE_ID):
        return self.site(site_id)["published_deploy"]

    def deploy(self, deploy_id, site_id=SITE_ID):
        return next(d for d in self.site(site_id)["deploys"] if d["id"] == deploy_id)

    def violations(self):
        return self.call("GET", "/_emulator/violations")

    def requests(self):
        return self.call("GET", "/_emulator/requests")["requests"]

    def api_requests(self, method=None):
        return [r for r in self.requests()
                if r["path"].startswith("/api/v1/") and method in (None, r["method"])]

    def writes(self):
        return self.api_requests("POST")

    def fault(self, **spec):
        return self.call("POST", "/_emulator/faults", spec)

    def push(self, site_id=SITE_ID, **deploy):
        return self.call("POST", "/_emulator/sites/%s/push" % site_id, deploy)


@pytest.fixture(scope="session")
def emulator_server():
    with Emulator(tokens=[TOKEN], max_per_page=4) as emulator:
        yield emulator


@pytest.fixture
def netlify(emulator_server):
    control = EmulatorControl(emulator_server)
    control.reset()
    yield control
    violations = control.violations()
    assert violations["count"] == 0, violations["violations"]


def _check_no_token(run, *tokens):
    for token in (TOKEN,) + tokens:
        assert token not in run.stdout, "token leaked to stdout"
        assert token not in run.stderr, "token leaked to stderr"
    return run


@pytest.fixture
def rollback(netlify, tmp_path):
    """Run the playbook against the emulator; every run is checked for the token."""

    def run(check=False, diff=False, verbosity=0, token=TOKEN, json_output=True, **extra_vars):
        variables = {"site_id": SITE_ID, "api_url": netlify.api_url,
                     "history_file": str(tmp_path / "history.jsonl")}
        variables.update(extra_vars)
        result = run_playbook(PLAYBOOK, extra_vars=variables, check=check, diff=diff, verbosity=verbosity,
                              env={"NETLIFY_AUTH_TOKEN": token}, json_output=json_output,
                              timeout=120)
        return _check_no_token(result, token)

    run.history_file = tmp_path / "history.jsonl"
    return run


@pytest.fixture
def module(netlify, tmp_path):
    """Run one module task against the emulator; returns (run, task result)."""

    def run(name, args, check=False, diff=False, verbosity=0, token=TOKEN):
        args = dict(args)
        args.setdefault("api_url", netlify.api_url)
        args.setdefault("retry_delay", 0.05)
        play = [{
            "name": "Run one Netlify module",
            "hosts": "localhost",
            "gather_facts": False,
            "connection": "local",
            "tasks": [{"name": "Run the module", name: args, "register": "result", "ignore_errors": True}],
        }]
        path = tmp_path / "module.yml"
        path.write_text(json.dumps(play))
        result = run_playbook(str(path), check=check, diff=diff, verbosity=verbosity,
                              env={"NETLIFY_AUTH_TOKEN": token}, timeout=120)
        _check_no_token(result, token)
        results = result.task_results("Run the module")
        assert results, result.stdout + result.stderr
        return result, results[0]

    return run

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A blue-green start given the rollback's intent writes it to the ledger as in_progress before
anything changes (a run killed after the proxy switch is then resumed and recorded); without
an intent, and in check mode, the ledger is left as it was."""

from __future__ import annotations

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._blue_green_color import ColorRunner
from ansible_collections.ops.rollback.plugins.module_utils._releases import load_ledger, save_ledger

SERVICES = [{"name": "web", "container_port": 8080, "blue_port": 18091, "green_port": 18092, "bind_ip": "127.0.0.1"}]
RESOLVED = {"name": "shop", "services": {"web": {"image": "app:v1", "ports": [{"target": 8080, "published": "8080"}]}},
            "networks": {"default": {"name": "shop_default"}}}
INTENT = {"rollback_id": "20261202T000000Z-1", "from": "r2", "to": "r1", "started_at": "2026-12-02T00:00:00Z"}


class FakeModule:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name


class FakeCli:
    def __init__(self, state_dir, running=()):
        self.state_dir = state_dir
        self.containers = list(running)
        self.ledger_at_up = "no compose up"

    def run(self, what, argv, check=True):
        return 0, "", ""

    def project_containers(self):
        return self.containers

    def compose(self, what, argv):
        self.ledger_at_up = load_ledger(self.state_dir, "shop")


class FakeStore:
    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.stack = "shop"
        self.cli = FakeCli(state_dir)

    def stored_resolved(self, release):
        return RESOLVED

    def image_id(self, ref):
        return "sha256:v1" if ref == "app:v1" else None

    def path(self, release_id):
        return "%s/shop/releases/%s" % (self.state_dir, release_id)


def make_runner(tmp_path, check_mode=False):
    state_dir = str(tmp_path)
    save_ledger(state_dir, "shop", {"stack": "shop", "current": "r2", "releases": [
        {"id": "r1", "services": {"web": {"image": "app:v1", "image_id": "sha256:v1"}}},
        {"id": "r2", "services": {"web": {"image": "app:v2", "image_id": "sha256:v2"}}}]})
    store = FakeStore(state_dir)
    runner = ColorRunner(FakeModule(check_mode), store, SERVICES, "blue")
    runner.cli = FakeCli(state_dir)
    runner.ensure_volumes = lambda model: None
    return runner


def test_the_intent_is_in_the_ledger_before_the_color_starts(tmp_path):
    runner = make_runner(tmp_path)
    result = runner.start("r1", 30, INTENT)
    assert result["changed"] is True
    assert runner.cli.ledger_at_up["in_progress"] == INTENT
    assert load_ledger(str(tmp_path), "shop")["in_progress"] == INTENT


def test_the_intent_is_written_even_when_the_color_already_runs_the_release(tmp_path):
    runner = make_runner(tmp_path)
    runner.start("r1", 30)
    runner.cli.containers = [{"Id": "c1", "Image": "sha256:v1", "State": {"Running": True},
                              "Config": {"Labels": {"com.docker.compose.service": "web"}}}]
    runner.cli.ledger_at_up = "no compose up"
    result = runner.start("r1", 30, INTENT)
    assert result["changed"] is False and runner.cli.ledger_at_up == "no compose up"
    assert load_ledger(str(tmp_path), "shop")["in_progress"] == INTENT


@pytest.mark.parametrize("check_mode,intent", [(False, None), (True, INTENT)], ids=["no-intent", "check-mode"])
def test_no_intent_or_check_mode_leaves_the_ledger(tmp_path, check_mode, intent):
    runner = make_runner(tmp_path, check_mode)
    runner.start("r1", 30, intent)
    assert "in_progress" not in load_ledger(str(tmp_path), "shop")

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The delayed retire of a color: it stops the color only when nothing started it again and it
is not the active color, and it keeps its outcome for the operator."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _blue_green_color
from ansible_collections.ops.rollback.plugins.module_utils._blue_green import save_state
from ansible_collections.ops.rollback.plugins.module_utils._blue_green_color import ColorRunner
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCliError

SERVICES = [{"name": "web", "container_port": 80, "blue_port": 18091, "green_port": 18092, "bind_ip": "127.0.0.1"}]


class FakeModule:
    check_mode = False

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name


class FakeStore:
    def __init__(self, state_dir):
        self.state_dir = str(state_dir)
        self.stack = "shop"


@pytest.fixture
def runner(tmp_path, monkeypatch):
    runner = ColorRunner(FakeModule(), FakeStore(tmp_path), SERVICES, "blue")
    runner.stops = []

    def fake_stop():
        runner.stops.append(runner.project)
        return dict(runner.hints(), changed=True, stopped=["web"])
    monkeypatch.setattr(runner, "_stop", fake_stop)
    return runner


def outcome(runner):
    with open(runner.dir + "/retire.json", encoding="utf-8") as handle:
        return json.load(handle)


def during_delay(monkeypatch, action):
    """Runs `action` where the retire sleeps: what another run does within the delay."""
    monkeypatch.setattr(_blue_green_color.time, "sleep", lambda _seconds: action())


def test_retire_stops_an_idle_color_after_the_delay(runner, monkeypatch):
    slept = []
    monkeypatch.setattr(_blue_green_color.time, "sleep", slept.append)
    save_state(runner.store.state_dir, "shop", {"active": "green", "colors": {}})
    result = runner.retire(30)
    assert slept == [30]
    assert runner.stops == ["shop-blue"]
    assert (result["changed"], result["retire"], result["stopped"]) == (True, "stopped", ["web"])
    assert outcome(runner)["outcome"] == "stopped"
    for name in ("lock", "retire.json"):        # owner-only, like the rest of the state dir
        assert os.stat(os.path.join(runner.dir, name)).st_mode & 0o777 == 0o600, name


def test_retire_leaves_a_color_started_again_within_the_delay(runner, monkeypatch):
    def start_again():
        with runner.locked():
            with open(runner.dir + "/" + _blue_green_color.START_TOKEN_FILE, "w", encoding="utf-8") as handle:
                handle.write("another start\n")
    during_delay(monkeypatch, start_again)
    result = runner.retire(30)
    assert runner.stops == []
    assert result["changed"] is False and result["retire"] == "skipped: the color was started again"
    assert outcome(runner)["outcome"] == result["retire"]


def test_retire_leaves_the_active_color(runner, monkeypatch):
    during_delay(monkeypatch, lambda: save_state(runner.store.state_dir, "shop", {"active": "blue", "colors": {}}))
    result = runner.retire(0)
    assert runner.stops == []
    assert result["retire"] == "skipped: the color is the active one"


def test_a_failed_retire_is_recorded_and_raised(runner, monkeypatch):
    monkeypatch.setattr(_blue_green_color.time, "sleep", lambda _seconds: None)

    def broken_stop():
        raise DockerCliError("Stopping color project shop-blue", ["docker", "compose"], 1, "daemon gone")
    monkeypatch.setattr(runner, "_stop", broken_stop)
    with pytest.raises(DockerCliError):
        runner.retire(0)
    assert outcome(runner)["outcome"].startswith("failed: Stopping color project shop-blue failed")


def test_check_mode_reports_without_waiting(runner, monkeypatch):
    runner.module.check_mode = True
    monkeypatch.setattr(_blue_green_color.time, "sleep", lambda _seconds: pytest.fail("check mode must not wait"))
    result = runner.retire(600)
    assert result["retire"] == "would stop after 600 s"

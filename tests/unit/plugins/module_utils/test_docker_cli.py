# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DockerCli when the Engine does not answer: waiting for it, and not mistaking it for an
absent image."""

from __future__ import annotations

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _docker_cli
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError, daemon_unreachable
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore

DOWN = (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")


class FakeModule:
    """run_command answers from a list of (rc, out, err), one per call, and logs the argv."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv, data=None, binary_data=False):
        self.calls.append(argv)
        return self.answers.pop(0)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(_docker_cli.time, "sleep", slept.append)
    return slept


def test_the_daemon_messages_are_recognised():
    assert daemon_unreachable(DOWN[2])
    assert daemon_unreachable("error during connect: Get http://%2Fvar%2Frun%2Fdocker.sock/v1.41/version")
    assert not daemon_unreachable("Error: No such image: app:v9")
    assert not daemon_unreachable(None)


def test_wait_for_daemon_returns_at_once_when_it_answers(no_sleep):
    module = FakeModule([(0, "20.10.24\n", "")])
    assert DockerCli(module).wait_for_daemon(60) >= 0
    assert module.calls == [["/usr/bin/docker", "version", "--format", "{{.Server.Version}}"]]
    assert no_sleep == []


def test_wait_for_daemon_polls_until_the_engine_is_back(no_sleep):
    module = FakeModule([DOWN, DOWN, (0, "20.10.24\n", "")])
    DockerCli(module).wait_for_daemon(60)
    assert len(module.calls) == 3
    assert no_sleep == [1.0, 1.0]


def test_wait_for_daemon_fails_naming_the_engine_when_it_never_answers(monkeypatch):
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(_docker_cli.time, "monotonic", lambda: float(next(clock)))
    module = FakeModule([DOWN] * 50)
    with pytest.raises(DockerCliError) as caught:
        DockerCli(module).wait_for_daemon(12)
    assert "Waiting 12s for the Docker daemon" in str(caught.value)
    assert "Is the docker daemon running" in str(caught.value)
    assert len(module.calls) < 50


def test_an_absent_image_is_none(tmp_path):
    module = FakeModule([(1, "", "Error: No such image: app:v9")])
    store = ReleaseStore(module, DockerCli(module), str(tmp_path), "shop")
    assert store.image_id("app:v9") is None


def test_an_engine_that_does_not_answer_is_not_an_absent_image(tmp_path):
    module = FakeModule([DOWN])
    store = ReleaseStore(module, DockerCli(module), str(tmp_path), "shop")
    with pytest.raises(DockerCliError) as caught:
        store.image_id("app:v1")
    assert "Looking up image app:v1" in str(caught.value)
    assert "Cannot connect to the Docker daemon" in str(caught.value)

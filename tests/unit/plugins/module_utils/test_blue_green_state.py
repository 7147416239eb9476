# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recording which color serves: the state file, the ledger, the project directory."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._blue_green_state import activate, read
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError


def make_release(state_dir, release_id, files, status="unverified", version=None):
    base = state_dir / "shop" / "releases" / release_id / "files"
    base.mkdir(parents=True)
    for name, data in files.items():
        (base / name).write_bytes(data)
    ledger_path = state_dir / "shop" / "ledger.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {"stack": "shop", "current": None, "releases": []}
    ledger["releases"].append({"id": release_id, "files": sorted(files), "status": status, "version": version, "services": {}})
    ledger["current"] = release_id
    ledger_path.write_text(json.dumps(ledger))


@pytest.fixture
def dirs(tmp_path):
    state, project = tmp_path / "state", tmp_path / "project"
    project.mkdir()
    make_release(state, "r1", {"compose.yml": b"v1\n", ".env": b"APP_VERSION=v1\n"}, version="v1")
    make_release(state, "r2", {"compose.yml": b"v2\n", ".env": b"APP_VERSION=v2\n"}, version="v2")
    return str(state), str(project)


def ledger(state):
    with open(os.path.join(state, "shop", "ledger.json")) as handle:
        return json.load(handle)


def test_read_a_stack_that_never_switched(dirs):
    state, _project = dirs
    assert read(state, "shop", "r1") == {"active": None, "idle": "blue", "colors": {}, "active_release_id": None,
                                         "target_color": "blue", "release_version": "v1"}


def test_activate_records_the_color_the_files_and_the_ledger(dirs):
    state, project = dirs
    result = activate(state, "shop", project, "blue", "r1", verified=True)
    assert result["changed"] and result["active"] == "blue" and result["files_written"] == [".env", "compose.yml"]
    assert open(os.path.join(project, "compose.yml"), "rb").read() == b"v1\n"
    assert os.stat(os.path.join(project, ".env")).st_mode & 0o777 == 0o600
    entry = [r for r in ledger(state)["releases"] if r["id"] == "r1"][0]
    assert entry["status"] == "healthy" and ledger(state)["current"] == "r1"
    assert read(state, "shop", "r2")["target_color"] == "green"
    # A repeat changes nothing.
    again = activate(state, "shop", project, "blue", "r1", verified=True)
    assert not again["changed"] and again["files_written"] == []


def test_check_mode_reports_and_writes_nothing(dirs):
    state, project = dirs
    result = activate(state, "shop", project, "green", "r2", check_mode=True)
    assert result["changed"] and result["files_written"] == [".env", "compose.yml"]
    assert os.listdir(project) == []
    assert read(state, "shop")["active"] is None


def test_a_failed_release_keeps_its_status(dirs, tmp_path):
    state, project = dirs
    make_release(tmp_path / "state", "r3", {"compose.yml": b"v3\n"}, status="failed")
    activate(state, "shop", project, "blue", "r1")
    result = activate(state, "shop", project, "green", "r3", verified=True)
    assert result["files_removed"] == [".env"]
    assert [r for r in ledger(state)["releases"] if r["id"] == "r3"][0]["status"] == "failed"
    # The release has no .env: the project's is removed, so Compose does not read a stale one.
    assert sorted(os.listdir(project)) == ["compose.yml"]


def test_an_unknown_release_is_refused_before_any_change(dirs):
    state, project = dirs
    with pytest.raises(ReleaseError, match="release r9 is not in the ledger of stack shop"):
        activate(state, "shop", project, "blue", "r9")
    assert os.listdir(project) == []

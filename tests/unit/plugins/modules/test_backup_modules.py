# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""backup_info, compose_backup and compose_restore as Ansible runs them: input refused before
any change, and backup_info's listing (the Docker side is covered by molecule/backup)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A
from ansible_collections.ops.rollback.plugins.modules import backup_info, compose_backup, compose_restore


def run_module(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def a_backup(root, backup_id, data=b"archive", created="2026-11-22T04:30:12Z", kind="backup"):
    directory = os.path.join(root, "shop", backup_id)
    os.makedirs(os.path.join(directory, "volumes"))
    with open(os.path.join(directory, "volumes", "db.tar.zst"), "wb") as handle:
        handle.write(data)
    manifest = {"format": 1, "kind": kind, "backup_id": backup_id, "stack": "shop", "created": created,
                "collection": {"name": "ops.rollback", "version": "0.1.0"}, "volumes": [{"key": "db"}],
                "files": [A.file_entry("volumes/db.tar.zst", len(data), hashlib.sha256(data).hexdigest(), "volume")]}
    with open(os.path.join(directory, "manifest.json"), "wb") as handle:
        handle.write(A.manifest_bytes(manifest))
    return directory


def test_backup_info_lists_and_checks(tmp_path, capsys):
    root = str(tmp_path)
    a_backup(root, "20261121T000000Z", created="2026-11-21T00:00:00Z")
    newest = a_backup(root, "20261122T000000Z", created="2026-11-22T00:00:00Z")
    os.mkdir(os.path.join(root, "shop", "20261123T000000Z.partial"))
    result = run_module(backup_info, {"backup_root": root, "stack": "shop"}, capsys)
    assert result["changed"] is False
    assert [b["backup_id"] for b in result["backups"]] == ["20261123T000000Z", "20261121T000000Z", "20261122T000000Z"]
    assert result["latest"] == "20261122T000000Z" and result["count"] == 3
    assert result["backups"][0]["partial"] and not result["backups"][0]["valid"]
    with open(os.path.join(newest, "volumes", "db.tar.zst"), "r+b") as handle:
        handle.write(b"X")
    result = run_module(backup_info, {"backup_root": root, "stack": "shop", "verify_checksums": True,
                                      "backup_id": "20261122T000000Z"}, capsys)
    assert result["count"] == 1 and result["latest"] == "20261121T000000Z"
    assert result["backups"][0]["problems"][0].startswith("volumes/db.tar.zst: sha256")
    result = run_module(backup_info, {"backup_root": root, "stack": "shop", "backup_id": "latest"}, capsys)
    assert [b["backup_id"] for b in result["backups"]] == ["20261122T000000Z"]  # sizes still match


def test_backup_info_of_a_stack_without_backups(tmp_path, capsys):
    result = run_module(backup_info, {"backup_root": str(tmp_path), "stack": "ghost"}, capsys)
    assert (result["count"], result["latest"], result["backups"]) == (0, None, [])


@pytest.mark.parametrize("args, message", [
    ({"stack": "../../etc"}, "stack='../../etc' is not allowed"),
    ({"stack": "shop", "backup_id": "../x"}, "backup_id='../x' is not allowed"),
])
def test_backup_info_refuses_traversal(tmp_path, capsys, args, message):
    result = run_module(backup_info, dict(args, backup_root=str(tmp_path)), capsys)
    assert result["failed"] and message in result["msg"]


@pytest.mark.parametrize("args, message", [
    ({"stack": "../x"}, "stack='../x' is not allowed"),
    ({"stack": "shop", "backup_id": "a/b"}, "backup_id='a/b' is not allowed"),
    ({"stack": "shop", "keep": 0}, "keep must be at least 1"),
    ({"stack": "shop", "max_age_days": -1}, "max_age_days must not be negative"),
    ({"stack": "shop", "age_recipients": ["age1nope"]}, "age recipient 'age1nope' is not an age X25519 public key"),
    ({"stack": "shop", "project_dir": "/nonexistent/shop"}, "project_dir: /nonexistent/shop is not a directory"),
])
def test_compose_backup_refuses_bad_input_before_any_change(tmp_path, capsys, args, message):
    root = str(tmp_path / "backups")
    base = {"project_dir": str(tmp_path), "project_name": "shop", "backup_root": root}
    result = run_module(compose_backup, dict(base, **args), capsys)
    assert result["failed"] and message in result["msg"], result["msg"]
    assert not os.path.exists(root)


@pytest.mark.parametrize("args, message", [
    ({"stack": "../x"}, "stack='../x' is not allowed"),
    ({"stack": "shop", "backup_id": "../../etc"}, "backup_id='../../etc' is not allowed"),
    ({"stack": "ghost"}, "there are no backups of stack ghost"),
    ({"stack": "shop", "backup_id": "20200101T000000Z"}, "backup_id 20200101T000000Z is not a backup of stack shop"),
    ({"stack": "shop", "wait_timeout": 0}, "wait_timeout must be at least 1"),
])
def test_compose_restore_refuses_before_any_change(tmp_path, capsys, args, message):
    root = str(tmp_path / "backups")
    a_backup(root, "20261122T000000Z")
    before = sorted(os.listdir(os.path.join(root, "shop")))
    base = {"project_dir": str(tmp_path), "project_name": "shop", "backup_root": root}
    result = run_module(compose_restore, dict(base, **args), capsys)
    assert result["failed"] and message in result["msg"], result["msg"]
    assert sorted(os.listdir(os.path.join(root, "shop"))) == before


def test_compose_restore_refuses_a_flipped_byte_naming_the_file(tmp_path, capsys):
    root = str(tmp_path / "backups")
    directory = a_backup(root, "20261122T000000Z")
    with open(os.path.join(directory, "volumes", "db.tar.zst"), "r+b") as handle:
        handle.write(b"X")
    result = run_module(compose_restore, {"project_dir": str(tmp_path), "project_name": "shop", "stack": "shop",
                                          "backup_root": root, "backup_id": "20261122T000000Z"}, capsys)
    assert result["failed"]
    assert "failed its checksum check, nothing was changed: volumes/db.tar.zst: sha256" in result["msg"]

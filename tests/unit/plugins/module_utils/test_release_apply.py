# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""file_changes: what putting a release's files in place writes and removes."""

from __future__ import annotations

import os

from ansible_collections.ops.rollback.plugins.module_utils._release_apply import file_changes


def put(directory, files):
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def snapshot(directory):
    return {os.path.relpath(os.path.join(root, f), directory): open(os.path.join(root, f), "rb").read()
            for root, _dirs, files in os.walk(directory) for f in files}


def test_identical_files_are_neither_written_nor_removed(tmp_path):
    wanted = {"compose.yaml": b"services: {}\n", ".env": b"A=1\n"}
    put(tmp_path, wanted)
    assert file_changes(str(tmp_path), wanted) == ([], [])


def test_only_differing_or_missing_files_are_written_sorted(tmp_path):
    put(tmp_path, {"compose.yaml": b"same", ".env": b"A=old\n"})
    wanted = {"compose.yaml": b"same", ".env": b"A=new\n", "conf/app.conf": b"x", "compose.override.yaml": b"o"}
    writes, removes = file_changes(str(tmp_path), wanted)
    assert writes == [".env", "compose.override.yaml", "conf/app.conf"]
    assert removes == []


def test_compose_defaults_overrides_and_env_not_wanted_are_removed(tmp_path):
    put(tmp_path, {"compose.yaml": b"new", "docker-compose.yml": b"old", "compose.override.yml": b"o",
                   "docker-compose.override.yaml": b"o", ".env": b"A=1\n"})
    writes, removes = file_changes(str(tmp_path), {"compose.yaml": b"new"})
    assert writes == []
    assert removes == [".env", "compose.override.yml", "docker-compose.override.yaml", "docker-compose.yml"]


def test_other_files_are_never_removed(tmp_path):
    put(tmp_path, {"compose.yaml": b"c", "README.md": b"r", "data/db.sqlite": b"d", "prod.yml": b"p",
                   ".env.example": b"e", "conf/compose.yaml": b"nested"})
    _writes, removes = file_changes(str(tmp_path), {"compose.yaml": b"c"})
    assert removes == []


def test_a_directory_named_like_a_compose_file_is_not_removed(tmp_path):
    (tmp_path / "compose.yml").mkdir()
    assert file_changes(str(tmp_path), {"compose.yaml": b"c"}) == (["compose.yaml"], [])


def test_explicit_compose_files_replace_a_default_file(tmp_path):
    put(tmp_path, {"compose.yaml": b"default", "deploy/prod.yml": b"p"})
    writes, removes = file_changes(str(tmp_path), {"deploy/prod.yml": b"p2"})
    assert writes == ["deploy/prod.yml"]
    assert removes == ["compose.yaml"]


def test_file_changes_touches_nothing_on_disk(tmp_path):
    put(tmp_path, {"compose.yaml": b"old", ".env": b"A=1\n", "notes.txt": b"n"})
    before = snapshot(tmp_path)
    file_changes(str(tmp_path), {"compose.yaml": b"new", "extra.conf": b"x"})
    assert snapshot(tmp_path) == before

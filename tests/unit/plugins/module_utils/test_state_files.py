# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic, private state writes: directories 0700, files 0600, no half-written file."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._state_files import (
    append_line,
    ensure_dir,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)


def mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.fixture
def open_umask():
    """A permissive umask, so a mode that is right is right because the code set it."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_ensure_dir_creates_every_missing_level_0700(tmp_path, open_umask):
    leaf = tmp_path / "a" / "b" / "c"
    assert ensure_dir(str(leaf)) == str(leaf)
    for level in (tmp_path / "a", tmp_path / "a" / "b", leaf):
        assert mode(level) == 0o700, level


def test_ensure_dir_leaves_existing_parents_alone(tmp_path, open_umask):
    parent = tmp_path / "root"
    parent.mkdir(mode=0o755)
    ensure_dir(str(parent / "stack"))
    assert mode(parent) == 0o755
    assert mode(parent / "stack") == 0o700


def test_ensure_dir_tightens_an_existing_directory(tmp_path):
    existing = tmp_path / "stack"
    existing.mkdir()
    existing.chmod(0o755)
    ensure_dir(str(existing))
    assert mode(existing) == 0o700


def test_write_bytes_atomic_writes_content_with_mode_0600(tmp_path, open_umask):
    path = tmp_path / "new" / "file.env"
    write_bytes_atomic(str(path), b"A=1\n")
    assert path.read_bytes() == b"A=1\n"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_write_bytes_atomic_honours_an_explicit_mode(tmp_path):
    path = tmp_path / "compose.yaml"
    write_bytes_atomic(str(path), b"services: {}\n", mode=0o644)
    assert mode(path) == 0o644


def test_write_bytes_atomic_replaces_and_tightens_an_existing_file(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_bytes_atomic(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o600


def test_write_bytes_atomic_leaves_no_temporary_file(tmp_path):
    write_bytes_atomic(str(tmp_path / "f"), b"x")
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_write_bytes_atomic_failure_keeps_old_content_and_cleans_up(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_bytes_atomic(str(path), "not bytes")
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["ledger.json"]


def test_write_json_atomic_round_trips_through_read_json(tmp_path):
    path = str(tmp_path / "s" / "data.json")
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert read_json(path) == {"b": 1, "a": [1, 2]}
    assert mode(path) == 0o600


def test_write_json_atomic_sorts_keys_and_ends_with_newline(tmp_path):
    path = tmp_path / "data.json"
    write_json_atomic(str(path), {"b": 1, "a": 2})
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"')


def test_read_json_returns_default_for_a_missing_file(tmp_path):
    assert read_json(str(tmp_path / "nope.json"), default={"x": 1}) == {"x": 1}
    assert read_json(str(tmp_path / "nope.json")) is None


def test_read_json_raises_on_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(ValueError):
        read_json(str(path))


def test_append_line_creates_file_0600_in_a_0700_dir(tmp_path, open_umask):
    path = tmp_path / "stack" / "history.jsonl"
    append_line(str(path), "one")
    assert path.read_text() == "one\n"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_append_line_appends_one_newline_per_line(tmp_path):
    path = tmp_path / "history.jsonl"
    append_line(str(path), json.dumps({"n": 1}))
    append_line(str(path), json.dumps({"n": 2}) + "\n")
    assert path.read_text().splitlines() == ['{"n": 1}', '{"n": 2}']
    assert path.read_text().count("\n") == 2

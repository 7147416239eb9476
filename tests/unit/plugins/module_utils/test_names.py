# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""check_name and child_path: every path component under the state root goes through here."""

from __future__ import annotations

import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._names import (
    NameError_,
    check_name,
    check_project_name,
    child_path,
    shown,
)


@pytest.mark.parametrize("value", ["shop", "Shop_2", "a", "v1.2.3", "3f9c2a1b7d4e", "20261122T043000Z-1234", "a" * 128])
def test_check_name_returns_a_safe_name_unchanged(value):
    assert check_name(value, "stack") == value


@pytest.mark.parametrize("value", [
    "..", "a..b", "../etc", "a/b", "/abs", ".hidden", "-flag", "_x", "a b", "a;b", "a$b", "a\\b", "a" * 129,
])
def test_check_name_refuses_unsafe_names(value):
    with pytest.raises(NameError_):
        check_name(value, "stack")


@pytest.mark.parametrize("value", ["", None, 42, ["a"]])
def test_check_name_refuses_empty_and_non_strings(value):
    with pytest.raises(NameError_, match="stack must be a non-empty string"):
        check_name(value, "stack")


def test_check_name_error_names_the_option_and_value():
    with pytest.raises(NameError_, match=r"project_name='\.\./x' is not allowed"):
        check_name("../x", "project_name")


def test_check_name_refuses_a_trailing_newline():
    with pytest.raises(NameError_):
        check_name("shop\n", "stack")


def test_child_path_joins_names_under_root(tmp_path):
    assert child_path(str(tmp_path), "shop", "lock") == os.path.join(os.path.realpath(tmp_path), "shop", "lock")


def test_child_path_allows_the_root_itself(tmp_path):
    assert child_path(str(tmp_path)) == os.path.realpath(tmp_path)


@pytest.mark.parametrize("names", [("..",), ("a", "..", ".."), ("/etc",)])
def test_child_path_refuses_paths_that_escape_root(tmp_path, names):
    with pytest.raises(NameError_, match="escapes"):
        child_path(str(tmp_path / "root"), *names)


def test_child_path_refuses_a_sibling_sharing_the_root_prefix(tmp_path):
    with pytest.raises(NameError_):
        child_path(str(tmp_path / "state"), "..", "state-other")


def test_child_path_refuses_a_symlink_pointing_outside_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(NameError_):
        child_path(str(root), "link", "file")


@pytest.mark.parametrize("value", ["shop", "opsbadin", "a-b_c", "0", "a" * 63])
def test_check_project_name_takes_what_compose_takes(value):
    assert check_project_name(value) == value


@pytest.mark.parametrize("value", ["", "Shop", "v1.2", "-shop", "_shop", "shop;id", "../shop", "a" * 64, None, 7])
def test_check_project_name_refuses_naming_the_option(value):
    with pytest.raises(NameError_, match="^project_name=.* is not a Compose project name"):
        check_project_name(value)


def test_a_huge_value_is_not_echoed_in_full():
    with pytest.raises(NameError_) as info:
        check_name("a/" * 10000, "target")
    assert len(str(info.value)) < 300
    assert "(20000 characters)" in str(info.value)
    assert shown("v1") == "'v1'"

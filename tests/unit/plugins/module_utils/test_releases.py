# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release ledger: target selection, compose file search, release IDs, ledger upkeep."""

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    ReleaseError,
    add_or_touch,
    compose_file_names,
    find_release,
    keep_tag,
    ledger_path,
    load_ledger,
    prune_candidates,
    public_status,
    release_entry_view,
    release_file_names,
    release_id_for,
    save_ledger,
    select_target,
    set_status,
)


def rel(rid, status="healthy", version=None, **extra):
    return dict({"id": rid, "status": status, "version": version}, **extra)


def ledger_of(*releases, current=None):
    return {"stack": "shop", "current": current if current is not None else releases[-1]["id"],
            "releases": list(releases)}


def ids(releases):
    return [r["id"] for r in releases]


def touch(directory, *names):
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def snap(rid, image_id="sha256:aa"):
    return {"id": rid, "services": {"web": {"image": "web:1", "image_id": image_id}},
            "files": {"compose.yaml": "ab12"}, "compose_files": ["compose.yaml"], "migrations": {}}


# -- load / save ---------------------------------------------------------------------------
def test_load_ledger_of_a_new_stack_is_empty(tmp_path):
    assert load_ledger(str(tmp_path), "shop") == {"stack": "shop", "current": None, "releases": []}


def test_save_ledger_round_trips_with_private_modes(tmp_path):
    ledger = ledger_of(rel("aaaaaaaaaaaa"))
    save_ledger(str(tmp_path), "shop", ledger)
    assert load_ledger(str(tmp_path), "shop") == ledger
    path = ledger_path(str(tmp_path), "shop")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_ledger_path_refuses_a_traversing_stack_name(tmp_path):
    with pytest.raises(NameError_):
        ledger_path(str(tmp_path), "../etc")


# -- find / status -------------------------------------------------------------------------
def test_find_release_by_id_or_none():
    ledger = ledger_of(rel("a1"), rel("b2"))
    assert find_release(ledger, "b2")["id"] == "b2"
    assert find_release(ledger, "zz") is None


def test_set_status_changes_status_and_appends_history():
    ledger = ledger_of(rel("a1", status="unverified"))
    set_status(ledger, "a1", "healthy")
    set_status(ledger, "a1", "rolled-back")
    entry = find_release(ledger, "a1")
    assert entry["status"] == "rolled-back"
    assert [h["status"] for h in entry["status_history"]] == ["healthy", "rolled-back"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", entry["status_history"][0]["at"])


def test_set_status_refuses_an_unknown_status():
    with pytest.raises(ReleaseError, match="unknown release status 'broken'"):
        set_status(ledger_of(rel("a1")), "a1", "broken")


def test_set_status_refuses_a_release_not_in_the_ledger():
    with pytest.raises(ReleaseError, match="release zz is not in the ledger of stack shop"):
        set_status(ledger_of(rel("a1")), "zz", "healthy")


def test_public_status_is_current_for_the_running_release():
    ledger = ledger_of(rel("a1", status="failed"), rel("b2", status="healthy"), current="a1")
    assert public_status(ledger, ledger["releases"][0]) == "current"
    assert public_status(ledger, ledger["releases"][1]) == "healthy"


def test_public_status_defaults_to_unverified():
    ledger = ledger_of(rel("a1"), {"id": "b2"}, current="a1")
    assert public_status(ledger, ledger["releases"][1]) == "unverified"


# -- select_target: previous ---------------------------------------------------------------
@pytest.mark.parametrize("target", ["previous", None, ""])
def test_previous_is_the_newest_healthy_release_before_current(target):
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"))
    assert select_target(ledger, target)["id"] == "b2"


@pytest.mark.parametrize("status", ["rolled-back", "failed", "unverified"])
def test_previous_skips_releases_that_are_not_healthy(status):
    ledger = ledger_of(rel("a1"), rel("b2", status=status), rel("c3"))
    assert select_target(ledger)["id"] == "a1"


def test_previous_never_picks_a_release_after_current():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"), current="b2")
    assert select_target(ledger)["id"] == "a1"


def test_rolling_back_twice_goes_further_back():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"))
    first = select_target(ledger)
    set_status(ledger, "c3", "rolled-back")
    ledger["current"] = first["id"]
    assert select_target(ledger)["id"] == "a1"


def test_previous_without_a_healthy_earlier_release_fails_listing_releases():
    ledger = ledger_of(rel("a1", status="failed", version="v1"), rel("b2"))
    with pytest.raises(ReleaseError, match=r"no healthy release before the current one \(b2\).*a1 v1 \(failed\), b2 \(current\)"):
        select_target(ledger)


def test_previous_without_a_current_release_fails():
    ledger = ledger_of(rel("a1"), current="zz")
    with pytest.raises(ReleaseError, match="no current release"):
        select_target(ledger)


# -- select_target: ID, prefix, version ------------------------------------------------------
def test_target_by_exact_id_even_if_not_healthy():
    ledger = ledger_of(rel("3f9c2a1b7d4e", status="failed"), rel("0b1c2d3e4f50"))
    assert select_target(ledger, "3f9c2a1b7d4e")["id"] == "3f9c2a1b7d4e"


def test_target_by_unique_prefix_of_six():
    ledger = ledger_of(rel("3f9c2a1b7d4e"), rel("3f9c2b000000"), rel("0b1c2d3e4f50"))
    assert select_target(ledger, "3f9c2a")["id"] == "3f9c2a1b7d4e"


def test_target_prefix_shorter_than_six_is_not_accepted():
    ledger = ledger_of(rel("3f9c2a1b7d4e"), rel("0b1c2d3e4f50"))
    with pytest.raises(ReleaseError, match="is not a release ID, ID prefix or version label"):
        select_target(ledger, "3f9c2")


def test_target_ambiguous_prefix_names_every_match():
    ledger = ledger_of(rel("3f9c2a1b7d4e"), rel("3f9c2a000000"), rel("0b1c2d3e4f50"))
    with pytest.raises(ReleaseError, match="matches several releases: 3f9c2a1b7d4e, 3f9c2a000000"):
        select_target(ledger, "3f9c2a")


def test_target_by_version_label_is_the_newest_with_it():
    ledger = ledger_of(rel("a1", version="v1.4.0"), rel("b2", version="v1.4.0"), rel("c3", version="v1.5.0"))
    assert select_target(ledger, "v1.4.0")["id"] == "b2"


def test_unknown_target_lists_the_releases():
    ledger = ledger_of(rel("a1", version="v1"), rel("b2"))
    with pytest.raises(ReleaseError, match=r"target 'nope' .* stack shop; releases: a1 v1 \(healthy\), b2 \(current\)"):
        select_target(ledger, "nope")


# -- compose_file_names ---------------------------------------------------------------------
def test_compose_file_names_prefers_compose_yaml(tmp_path):
    touch(tmp_path, "compose.yaml", "compose.yml", "docker-compose.yml")
    assert compose_file_names(str(tmp_path), None) == ["compose.yaml"]


def test_compose_file_names_falls_back_to_docker_compose_yml(tmp_path):
    touch(tmp_path, "docker-compose.yml")
    assert compose_file_names(str(tmp_path), []) == ["docker-compose.yml"]


def test_compose_file_names_prefers_docker_compose_yml_over_yaml_like_compose(tmp_path):
    touch(tmp_path, "docker-compose.yaml", "docker-compose.yml")
    assert compose_file_names(str(tmp_path), None) == ["docker-compose.yml"]


def test_compose_file_names_adds_the_override_file(tmp_path):
    touch(tmp_path, "compose.yaml", "compose.override.yaml", "other.yml")
    assert compose_file_names(str(tmp_path), None) == ["compose.yaml", "compose.override.yaml"]


def test_compose_file_names_adds_the_docker_compose_override(tmp_path):
    touch(tmp_path, "docker-compose.yml", "docker-compose.override.yml")
    assert compose_file_names(str(tmp_path), None) == ["docker-compose.yml", "docker-compose.override.yml"]


def test_compose_file_names_adds_a_docker_compose_override_to_compose_yaml_like_compose(tmp_path):
    touch(tmp_path, "compose.yaml", "docker-compose.override.yml")
    assert compose_file_names(str(tmp_path), None) == ["compose.yaml", "docker-compose.override.yml"]


def test_compose_file_names_prefers_override_yml_like_compose(tmp_path):
    touch(tmp_path, "compose.yaml", "compose.override.yaml", "compose.override.yml")
    assert compose_file_names(str(tmp_path), None) == ["compose.yaml", "compose.override.yml"]


def test_compose_file_names_without_a_compose_file_fails(tmp_path):
    touch(tmp_path, "README.md")
    with pytest.raises(ReleaseError, match="no compose file in"):
        compose_file_names(str(tmp_path), None)


def test_compose_file_names_keeps_explicit_files_in_order_relative(tmp_path):
    touch(tmp_path, "base.yml", "deploy/prod.yml")
    names = compose_file_names(str(tmp_path), ["base.yml", str(tmp_path / "deploy" / "prod.yml")])
    assert names == ["base.yml", os.path.join("deploy", "prod.yml")]


@pytest.mark.parametrize("outside", ["../elsewhere.yml", "/etc/compose.yml"])
def test_compose_file_names_refuses_files_outside_project_dir(tmp_path, outside):
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(ReleaseError, match="is outside project_dir"):
        compose_file_names(str(project), [outside])


def test_compose_file_names_refuses_a_symlink_leading_outside(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    touch(tmp_path, "secret.yml")
    (project / "compose.yml").symlink_to(tmp_path / "secret.yml")
    with pytest.raises(ReleaseError, match="is outside project_dir"):
        compose_file_names(str(project), ["compose.yml"])


def test_compose_file_names_accepts_a_name_starting_with_two_dots_inside(tmp_path):
    touch(tmp_path, "..compose.yml")
    assert compose_file_names(str(tmp_path), ["..compose.yml"]) == ["..compose.yml"]


# -- release_file_names --------------------------------------------------------------------
def test_release_file_names_adds_env_when_present(tmp_path):
    touch(tmp_path, "compose.yaml", ".env")
    assert release_file_names(str(tmp_path), None) == ["compose.yaml", ".env"]


def test_release_file_names_without_env(tmp_path):
    touch(tmp_path, "compose.yaml")
    assert release_file_names(str(tmp_path), None) == ["compose.yaml"]


def test_release_file_names_adds_extra_globs_sorted_without_duplicates(tmp_path):
    touch(tmp_path, "compose.yaml", "conf/b.conf", "conf/a.conf", "notes.txt")
    (tmp_path / "conf" / "sub").mkdir()
    names = release_file_names(str(tmp_path), None, ["conf/*", "compose.yaml"])
    assert names == ["compose.yaml", os.path.join("conf", "a.conf"), os.path.join("conf", "b.conf")]


def test_release_file_names_ignores_globs_outside_project_dir(tmp_path):
    project = tmp_path / "project"
    touch(project, "compose.yaml")
    touch(tmp_path, "outside.conf")
    assert release_file_names(str(project), None, ["../*.conf", str(tmp_path / "*.conf")]) == ["compose.yaml"]


# -- release_id_for / keep_tag -------------------------------------------------------------
def test_release_id_is_twelve_hex_and_content_derived():
    files = {"compose.yaml": b"services: {}\n", ".env": b"A=1\n"}
    services = {"web": {"image_id": "sha256:aa"}, "db": {"image_id": "sha256:bb"}}
    rid = release_id_for(files, services)
    assert re.match(r"^[0-9a-f]{12}$", rid)
    assert rid == release_id_for(dict(files), {k: dict(v) for k, v in services.items()})


def test_release_id_does_not_depend_on_order():
    a = release_id_for({"a": b"1", "b": b"2"}, {"web": {"image_id": "x"}, "db": {"image_id": "y"}})
    b = release_id_for({"b": b"2", "a": b"1"}, {"db": {"image_id": "y"}, "web": {"image_id": "x"}})
    assert a == b


@pytest.mark.parametrize("files, services", [
    ({"compose.yaml": b"changed"}, {"web": {"image_id": "sha256:aa"}}),
    ({"compose.yaml": b"services: {}\n"}, {"web": {"image_id": "sha256:cc"}}),
    ({"compose.yml": b"services: {}\n"}, {"web": {"image_id": "sha256:aa"}}),
    ({"compose.yaml": b"services: {}\n"}, {"api": {"image_id": "sha256:aa"}}),
])
def test_release_id_changes_with_content_names_or_images(files, services):
    base = release_id_for({"compose.yaml": b"services: {}\n"}, {"web": {"image_id": "sha256:aa"}})
    assert release_id_for(files, services) != base


def test_release_id_ignores_other_service_fields():
    a = release_id_for({"c": b"1"}, {"web": {"image_id": "x", "image": "web:1"}})
    b = release_id_for({"c": b"1"}, {"web": {"image_id": "x", "image": "web:latest"}})
    assert a == b


def test_keep_tag_is_lowercase_and_names_stack_service_release():
    assert keep_tag("Shop", "Web", "3f9c2a1b7d4e") == "ops-rollback/shop_web:3f9c2a1b7d4e"


# Docker's reference grammar (distribution/reference): path components and tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REFERENCE = re.compile(r"^%s(?:/%s)*:[\w][\w.-]{0,127}$" % (_COMPONENT, _COMPONENT))


def test_keep_tag_is_a_valid_docker_reference_for_usual_names():
    assert _REFERENCE.match(keep_tag("shop_prod", "web-app", "3f9c2a1b7d4e"))


def test_keep_tag_is_a_valid_docker_reference_for_a_stack_ending_in_dash():
    assert _REFERENCE.match(keep_tag("shop-", "web", "3f9c2a1b7d4e"))


# -- add_or_touch ----------------------------------------------------------------------------
def test_add_or_touch_appends_a_new_release_and_makes_it_current():
    ledger = ledger_of(rel("a1"))
    entry = add_or_touch(ledger, snap("b2"), version="v2", commit="abc")
    assert ids(ledger["releases"]) == ["a1", "b2"]
    assert ledger["current"] == "b2"
    assert entry["version"] == "v2" and entry["git_commit"] == "abc"
    assert entry["status"] == "unverified"
    assert entry["status_history"][0]["status"] == "unverified"
    assert entry["backups"] == []
    assert entry["deployed_at"]


def test_add_or_touch_records_the_given_status():
    ledger = {"stack": "shop", "current": None, "releases": []}
    assert add_or_touch(ledger, snap("a1"), status="healthy")["status"] == "healthy"


def test_add_or_touch_without_make_current_keeps_current():
    ledger = ledger_of(rel("a1"))
    entry = add_or_touch(ledger, snap("b2"), make_current=False)
    assert ledger["current"] == "a1"
    assert ids(ledger["releases"]) == ["a1", "b2"]
    assert "deployed_at" not in entry


def test_add_or_touch_moves_a_redeployed_release_to_the_end_and_makes_it_current():
    ledger = ledger_of(rel("a1", version="v1"), rel("b2"), rel("c3"))
    entry = add_or_touch(ledger, snap("a1"), version="v9")
    assert ids(ledger["releases"]) == ["b2", "c3", "a1"]
    assert ledger["current"] == "a1"
    assert entry["version"] == "v1"
    assert entry["deployed_at"]


def test_add_or_touch_sets_a_missing_version_on_an_existing_release():
    ledger = ledger_of(rel("a1"), rel("b2"))
    assert add_or_touch(ledger, snap("a1"), version="v1")["version"] == "v1"


def test_add_or_touch_of_the_current_release_changes_nothing_in_order():
    ledger = ledger_of(rel("a1"), rel("b2", deployed_at="2026-01-01T00:00:00Z"))
    entry = add_or_touch(ledger, snap("b2"))
    assert ids(ledger["releases"]) == ["a1", "b2"]
    assert entry["deployed_at"] == "2026-01-01T00:00:00Z"


def test_add_or_touch_existing_without_make_current_stays_in_place():
    ledger = ledger_of(rel("a1"), rel("b2"))
    add_or_touch(ledger, snap("a1"), make_current=False)
    assert ids(ledger["releases"]) == ["a1", "b2"]
    assert ledger["current"] == "b2"


# -- prune_candidates --------------------------------------------------------------------
def test_prune_candidates_are_the_oldest_beyond_keep():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"), rel("d4"))
    assert ids(prune_candidates(ledger, 2)) == ["a1", "b2"]


def test_prune_candidates_empty_when_within_keep():
    ledger = ledger_of(rel("a1"), rel("b2"))
    assert prune_candidates(ledger, 2) == []
    assert prune_candidates(ledger, 5) == []


def test_prune_candidates_never_the_current_release():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"), current="a1")
    assert ids(prune_candidates(ledger, 1)) == ["b2", "c3"]


def test_prune_candidates_never_a_protected_release():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"), rel("d4"))
    assert ids(prune_candidates(ledger, 2, protect=["a1"])) == ["b2", "c3"]


def test_prune_candidates_keep_zero_spares_only_current_and_protected():
    ledger = ledger_of(rel("a1"), rel("b2"), rel("c3"))
    assert ids(prune_candidates(ledger, 0, protect=("b2",))) == ["a1"]


# -- release_entry_view ----------------------------------------------------------------------
def test_release_entry_view_fields():
    release = {"id": "a1", "version": "v1", "git_commit": "abc", "recorded_at": "t0", "deployed_at": "t1",
               "status": "healthy", "backups": ["bk1"],
               "services": {"web": {"image": "web:1", "image_id": "sha256:aa", "keep_tag": "ops-rollback/shop_web:a1",
                                    "repo_digests": ["x"]}}}
    ledger = ledger_of(release, rel("b2"), current="b2")
    view = release_entry_view(ledger, release)
    assert view == {
        "id": "a1", "version": "v1", "git_commit": "abc", "recorded_at": "t0", "deployed_at": "t1",
        "status": "healthy", "verified": True,
        "images": {"web": {"image": "web:1", "image_id": "sha256:aa", "keep_tag": "ops-rollback/shop_web:a1"}},
        "backups": ["bk1"],
    }
    view["backups"].append("bk2")
    assert release["backups"] == ["bk1"]


def test_release_entry_view_of_current_unverified_release():
    ledger = ledger_of({"id": "a1", "status": "unverified"})
    view = release_entry_view(ledger, ledger["releases"][0], images_present={"web": True})
    assert view["status"] == "current"
    assert view["verified"] is False
    assert view["images"] == {} and view["backups"] == []
    assert view["images_present"] == {"web": True}


def test_release_entry_view_omits_images_present_when_not_given():
    ledger = ledger_of(rel("a1"))
    assert "images_present" not in release_entry_view(ledger, ledger["releases"][0])

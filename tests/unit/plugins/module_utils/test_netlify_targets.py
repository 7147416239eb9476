# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Target selection: steps_back over mixed states and contexts, commit prefixes, validation."""
import pytest

from ansible_collections.ops.rollback.plugins.module_utils._netlify_targets import (
    Replay,
    TargetError,
    check_selectors,
    check_target,
    direction,
    published_view,
    restore_plan,
    reverted_deploys,
    select_by_commit,
    select_by_steps_back,
    summarize_deploy,
)

SITE = "site-1"


def deploy(deploy_id, state="ready", context="production", commit=None, created="2024-06-01T00:00:00Z", **extra):
    record = {"id": deploy_id, "site_id": SITE, "state": state, "context": context,
              "commit_ref": commit or (deploy_id * 40)[:40], "branch": "main", "title": "deploy " + deploy_id,
              "created_at": created, "locked": False, "skipped": False, "draft": False}
    record.update(extra)
    return record


# Newest first, like the API lists them.
HISTORY = [
    deploy("n1", created="2024-06-10"),                                      # newer than published (roll forward)
    deploy("p0", created="2024-06-09"),                                      # published
    deploy("e1", state="error", created="2024-06-08"),
    deploy("r1", created="2024-06-07", commit="aaaaaaa1" + "0" * 32),        # steps_back=1
    deploy("pv", context="deploy-preview", created="2024-06-06", commit="aaaaaaa2" + "0" * 32),
    deploy("sk", state="skipped", skipped=True, created="2024-06-05"),
    deploy("bd", context="branch-deploy", created="2024-06-04"),
    deploy("r2", created="2024-06-03", commit="bbbbbbbb" + "1" * 32),          # steps_back=2
    deploy("dr", draft=True, created="2024-06-02"),
    deploy("sr", skipped=True, created="2024-06-02"),                          # ready but skipped
    deploy("bl", state="building", created="2024-06-01"),
    deploy("r3", created="2024-05-31", commit="bbbbbbbb" + "1" * 32),          # steps_back=3, same commit as r2
]


@pytest.mark.parametrize("steps, expected", [(1, "r1"), (2, "r2"), (3, "r3")])
def test_steps_back_counts_only_ready_production_deploys_before_the_published_one(steps, expected):
    assert select_by_steps_back(HISTORY, "p0", steps)["id"] == expected


def test_steps_back_beyond_the_history_says_how_many_there_are():
    with pytest.raises(TargetError, match="only 3 ready production deploys before the published deploy p0"):
        select_by_steps_back(HISTORY, "p0", 4)


def test_steps_back_needs_the_published_deploy_in_the_history():
    with pytest.raises(TargetError, match="not in the site's deploy history"):
        select_by_steps_back(HISTORY, "gone", 1)
    with pytest.raises(TargetError, match="no published deploy"):
        select_by_steps_back(HISTORY, None, 1)
    with pytest.raises(TargetError, match="1 or more"):
        select_by_steps_back(HISTORY, "p0", 0)


def test_steps_back_stops_reading_once_found():
    consumed = []

    def lazy():
        for item in HISTORY:
            consumed.append(item["id"])
            yield item

    assert select_by_steps_back(lazy(), "p0", 1)["id"] == "r1"
    assert consumed == ["n1", "p0", "e1", "r1"]


def test_commit_prefix_that_is_unique_selects_its_production_deploy():
    assert select_by_commit(HISTORY, "AAAAAAA1")["id"] == "r1"


def test_commit_prefix_that_matches_two_commits_is_ambiguous():
    with pytest.raises(TargetError, match="ambiguous: it matches commits aaaaaaa1.*, aaaaaaa2"):
        select_by_commit(HISTORY, "aaaaaaa")


def test_commit_prefix_must_have_seven_characters():
    with pytest.raises(TargetError, match="too short"):
        select_by_commit(HISTORY, "aaaaaa")
    with pytest.raises(TargetError, match="too short"):
        select_by_commit(HISTORY, None)


def test_commit_without_a_match():
    with pytest.raises(TargetError, match="no deploy of this site has a commit starting with 1234567"):
        select_by_commit(HISTORY, "1234567")


def test_commit_with_only_unusable_deploys_names_them():
    with pytest.raises(TargetError, match=r"no ready production deploy: pv \(deploy-preview, usable\)"):
        select_by_commit(HISTORY, "aaaaaaa2")
    with pytest.raises(TargetError, match=r"e1 \(production, its state is error, not ready\)"):
        select_by_commit(HISTORY, "e1e1e1e1")


def test_commit_deployed_twice_prefers_the_published_deploy_then_the_newest():
    assert select_by_commit(HISTORY, "bbbbbbbb")["id"] == "r2"
    assert select_by_commit(HISTORY, "bbbbbbbb", published_id="r3")["id"] == "r3"


@pytest.mark.parametrize("target, message", [
    (deploy("x", site_id="site-2"), "belongs to site site-2, not to site site-1"),
    (deploy("x", state="error"), "its state is error, not ready"),
    (deploy("x", state="building"), "its state is building"),
    (deploy("x", skipped=True), "skipped"),
    (deploy("x", state="skipped"), "skipped"),
    (deploy("x", draft=True), "draft"),
])
def test_check_target_refuses(target, message):
    with pytest.raises(TargetError, match=message):
        check_target(target, SITE)


def test_check_target_warns_about_non_production_deploys():
    assert check_target(deploy("x"), SITE) == []
    assert "deploy-preview" in check_target(deploy("x", context="deploy-preview"), SITE)[0]


def test_reverted_deploys_are_the_published_one_down_to_the_target():
    assert [d["id"] for d in reverted_deploys(HISTORY, "p0", "r2")] == ["p0", "r1"]
    assert [d["id"] for d in reverted_deploys(HISTORY, "p0", "r1")] == ["p0"]


def test_nothing_is_reverted_when_rolling_forward_or_staying():
    assert reverted_deploys(HISTORY, "p0", "n1") == []
    assert reverted_deploys(HISTORY, "p0", "p0") == []
    assert reverted_deploys(HISTORY, None, "r1") == []


def test_direction():
    assert direction(HISTORY[1], HISTORY[3]) == "back"
    assert direction(HISTORY[1], HISTORY[0]) == "forward"
    assert direction(HISTORY[1], HISTORY[1]) == "none"
    assert direction(None, HISTORY[1]) == "forward"


@pytest.mark.parametrize("published, target, lock, expected", [
    ("p0", deploy("r1"), True, {"restore": True, "lock": True}),
    ("p0", deploy("r1"), False, {"restore": True, "lock": False}),
    ("p0", deploy("r1", locked=True), True, {"restore": True, "lock": False}),
    ("r1", deploy("r1"), True, {"restore": False, "lock": True}),
    ("r1", deploy("r1", locked=True), True, {"restore": False, "lock": False}),
    ("r1", deploy("r1"), False, {"restore": False, "lock": False}),
    (None, deploy("r1"), False, {"restore": True, "lock": False}),
])
def test_restore_plan_writes_only_what_differs(published, target, lock, expected):
    assert restore_plan(deploy(published) if published else None, target, lock) == expected


def test_published_view_and_summary():
    view = published_view(deploy("r1", commit="c" * 40), locked=True)
    assert view == {"id": "r1", "commit_ref": "c" * 40, "title": "deploy r1", "branch": "main", "locked": True}
    assert published_view(None)["id"] is None
    summary = summarize_deploy(dict(deploy("r1"), locked=None, extra="dropped"))
    assert summary["locked"] is False and "extra" not in summary and summary["deploy_url"] is None
    assert summarize_deploy(None) is None


def test_replay_fetches_once_and_replays():
    pulled = []

    def source():
        for item in range(4):
            pulled.append(item)
            yield item

    replay = Replay(source())
    assert next(iter(replay)) == 0
    assert list(replay) == [0, 1, 2, 3]
    assert list(replay) == [0, 1, 2, 3]
    assert pulled == [0, 1, 2, 3]


@pytest.mark.parametrize("args", [
    ("3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10",), ("www.ops-demo.example", "6650f1c2e00000000000000b"),
    ("site", None, "594fd16"), ("site", None, None, 1), ("site", None, None, 10000),
])
def test_check_selectors_takes_ids_domains_and_prefixes(args):
    check_selectors(*args)


@pytest.mark.parametrize("args, option", [
    (("",), "site_id"), (("../accounts",), "site_id"), (("a..b",), "site_id"), (("a/b",), "site_id"),
    (("site", "../../sites"), "deploy_id"), (("site", "$(id)"), "deploy_id"), (("site", ""), "deploy_id"),
    (("site", None, "abc1234;id"), "commit_ref"), (("site", None, "main"), "commit_ref"),
    (("site", None, None, 0), "steps_back"), (("site", None, None, 10 ** 9), "steps_back"),
])
def test_check_selectors_refuses_naming_the_option(args, option):
    with pytest.raises(TargetError, match="^%s" % option):
        check_selectors(*args)

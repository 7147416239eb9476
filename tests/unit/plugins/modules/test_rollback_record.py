# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rollback_record.update_ledger: release statuses and current release after a rollback."""

from __future__ import annotations

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError, find_release, select_target
from ansible_collections.ops.rollback.plugins.modules.rollback_record import update_ledger


def ledger(current="c3", in_progress=True):
    data = {"stack": "shop", "current": current, "releases": [
        {"id": rid, "status": "healthy", "backups": []} for rid in ("a1", "b2", "c3")]}
    if in_progress:
        data["in_progress"] = {"from": "c3", "to": "b2"}
    return data


def params(status, **extra):
    base = {"status": status, "from_release": "c3", "to_release": "b2", "backup_id": None, "recovered": None}
    base.update(extra)
    return base


def status_of(data, rid):
    return find_release(data, rid)["status"]


# -- succeeded -------------------------------------------------------------------------------
def test_succeeded_marks_origin_rolled_back_and_target_healthy_current():
    data = ledger()
    find_release(data, "b2")["status"] = "unverified"
    update_ledger(data, params("succeeded"))
    assert status_of(data, "c3") == "rolled-back"
    assert status_of(data, "b2") == "healthy"
    assert data["current"] == "b2"
    assert status_of(data, "a1") == "healthy"


def test_succeeded_records_status_history():
    data = ledger()
    update_ledger(data, params("succeeded"))
    assert find_release(data, "c3")["status_history"][-1]["status"] == "rolled-back"
    assert find_release(data, "b2")["status_history"][-1]["status"] == "healthy"


def test_after_success_previous_goes_further_back():
    data = ledger()
    update_ledger(data, params("succeeded"))
    assert select_target(data)["id"] == "a1"


# -- failed ------------------------------------------------------------------------------------
def test_failed_marks_target_failed_and_leaves_origin_status():
    data = ledger()
    update_ledger(data, params("failed", recovered=False))
    assert status_of(data, "b2") == "failed"
    assert status_of(data, "c3") == "healthy"
    assert data["current"] == "c3"


def test_failed_and_recovered_makes_origin_current():
    data = ledger(current="b2")
    update_ledger(data, params("failed", recovered=True))
    assert data["current"] == "c3"
    assert status_of(data, "b2") == "failed"


def test_failed_not_recovered_does_not_move_current():
    data = ledger(current="b2")
    update_ledger(data, params("failed", recovered=False))
    assert data["current"] == "b2"


def test_failed_target_is_never_chosen_as_previous_again():
    data = ledger()
    update_ledger(data, params("failed", recovered=True))
    assert select_target(data)["id"] == "a1"


def test_failed_with_target_equal_to_origin_marks_nothing_failed():
    data = ledger()
    update_ledger(data, params("failed", to_release="c3", recovered=True))
    assert [r["status"] for r in data["releases"]] == ["healthy", "healthy", "healthy"]


# -- noop, backups, in_progress ------------------------------------------------------------------
def test_noop_changes_no_status_and_no_current():
    data = ledger()
    update_ledger(data, params("noop"))
    assert [r["status"] for r in data["releases"]] == ["healthy", "healthy", "healthy"]
    assert data["current"] == "c3"


def test_backup_id_is_attached_to_origin_once():
    data = ledger()
    update_ledger(data, params("failed", backup_id="bk-1", recovered=True))
    update_ledger(data, params("succeeded", backup_id="bk-1"))
    assert find_release(data, "c3")["backups"] == ["bk-1"]
    assert find_release(data, "b2")["backups"] == []


def test_backup_id_is_added_to_existing_backups():
    data = ledger()
    find_release(data, "c3")["backups"] = ["bk-0"]
    update_ledger(data, params("succeeded", backup_id="bk-1"))
    assert find_release(data, "c3")["backups"] == ["bk-0", "bk-1"]


def test_backup_list_is_created_when_missing():
    data = ledger()
    del find_release(data, "c3")["backups"]
    update_ledger(data, params("noop", backup_id="bk-1"))
    assert find_release(data, "c3")["backups"] == ["bk-1"]


def test_without_backup_id_backups_are_unchanged():
    data = ledger()
    update_ledger(data, params("succeeded"))
    assert all(r["backups"] == [] for r in data["releases"])


def test_backup_of_an_unknown_origin_is_ignored_on_noop():
    data = ledger()
    update_ledger(data, params("noop", from_release="zz", backup_id="bk-1"))
    assert all(r["backups"] == [] for r in data["releases"])


@pytest.mark.parametrize("status, extra", [("succeeded", {}), ("failed", {"recovered": True}),
                                           ("failed", {"recovered": False}), ("noop", {})])
def test_in_progress_is_cleared(status, extra):
    data = ledger()
    assert update_ledger(data, params(status, **extra)) is data
    assert "in_progress" not in data


def test_without_in_progress_nothing_fails():
    data = ledger(in_progress=False)
    update_ledger(data, params("succeeded"))
    assert "in_progress" not in data


def test_succeeded_with_a_target_not_in_the_ledger_raises():
    with pytest.raises(ReleaseError, match="release zz is not in the ledger of stack shop"):
        update_ledger(ledger(), params("succeeded", to_release="zz"))

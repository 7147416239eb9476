# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""netlify_deploy_restore and netlify_deploy_info with a fake API client: check mode guards every
write, idempotency, diff, validation before writes, verification after them."""
import copy

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.module_utils._netlify import NetlifyError
from ansible_collections.ops.rollback.plugins.modules import netlify_deploy_info, netlify_deploy_restore

SITE = "site-1"
TOKEN = "nfp_unit_module_SECRET"


def deploy(deploy_id, state="ready", context="production", site=SITE, **extra):
    record = {"id": deploy_id, "site_id": site, "state": state, "context": context, "branch": "main",
              "commit_ref": (deploy_id + "0123456789abcdef") * 3, "title": "title " + deploy_id,
              "created_at": "2024-06-%02dT00:00:00Z" % (30 - len(extra)), "locked": False}
    record.update(extra)
    return record


HISTORY = [
    deploy("d5", created_at="2024-06-05"),
    deploy("d4", state="error", created_at="2024-06-04"),
    deploy("d3", context="deploy-preview", created_at="2024-06-03"),
    deploy("d2", created_at="2024-06-02"),
    deploy("d1", created_at="2024-06-01"),
]


class FakeClient:
    """In-memory Netlify: one site publishing d5, plus a deploy of another site."""

    def __init__(self, published="d5", verify_lies=False, fail_on=None):
        self.deploys = copy.deepcopy(HISTORY)
        self.other = deploy("x1", site="site-2")
        self.published = published
        self.verify_lies = verify_lies
        self.fail_on = fail_on
        self.calls = 0
        self.retries = []
        self.writes = []

    def _find(self, deploy_id):
        for item in self.deploys + [self.other]:
            if item["id"] == deploy_id:
                return item
        raise NetlifyError("GET /deploys/%s: HTTP 404 Not Found" % deploy_id, status=404)

    def get_site(self, site_id):
        self.calls += 1
        if site_id not in (SITE, "example.netlify.app"):
            raise NetlifyError("GET /sites/%s: HTTP 404 Not Found" % site_id, status=404)
        published = None if self.published is None else copy.deepcopy(self._find(self.published))
        if self.verify_lies and self.writes:
            published = copy.deepcopy(self._find("d5"))
        return {"id": SITE, "name": "example", "url": "http://example.test", "ssl_url": "https://example.test",
                "published_deploy": published}

    def iter_site_deploys(self, site_id, **_filters):
        assert site_id == SITE
        for index, item in enumerate(self.deploys):
            if index % 2 == 0:
                self.calls += 1
            yield copy.deepcopy(item)

    def get_deploy(self, deploy_id):
        self.calls += 1
        return copy.deepcopy(self._find(deploy_id))

    def restore_deploy(self, site_id, deploy_id):
        self.calls += 1
        if self.fail_on == "restore":
            raise NetlifyError("POST /sites/%s/deploys/%s/restore: HTTP 500 (gave up after 6 attempts)"
                               % (site_id, deploy_id))
        self.writes.append(("restore", deploy_id))
        self.published = deploy_id
        return copy.deepcopy(self._find(deploy_id))

    def lock_deploy(self, deploy_id):
        self.calls += 1
        if self.fail_on == "lock":
            raise NetlifyError("POST /deploys/%s/lock: HTTP 500" % deploy_id)
        self.writes.append(("lock", deploy_id))
        self._find(deploy_id)["locked"] = True
        return copy.deepcopy(self._find(deploy_id))


class Exit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get("msg"))
        self.result = result
        self.failed = failed


@pytest.fixture(autouse=True)
def capture_exit(monkeypatch):
    def exit_json(_module, **result):
        raise Exit(result, False)

    def fail_json(_module, **result):
        raise Exit(result, True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run(module, fake, monkeypatch, check=False, diff=False, **args):
    monkeypatch.setattr(module, "client_from_module", lambda _module: fake)
    args.setdefault("auth_token", TOKEN)
    args.update(_ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            module.main()
    return info.value


def restore(fake, monkeypatch, **args):
    args.setdefault("site_id", SITE)
    return run(netlify_deploy_restore, fake, monkeypatch, **args)


def test_check_mode_reports_the_target_and_writes_nothing(monkeypatch):
    fake = FakeClient()
    out = restore(fake, monkeypatch, check=True, diff=True)
    assert not out.failed
    assert out.result["changed"] is True
    assert out.result["deploy"]["id"] == "d2"
    assert out.result["deploy"]["locked"] is True
    assert out.result["previous_deploy"]["id"] == "d5"
    assert [d["id"] for d in out.result["reverted_deploys"]] == ["d5"]
    assert out.result["direction"] == "back"
    assert out.result["verified"] is False
    assert out.result["diff"]["before"]["id"] == "d5"
    assert out.result["diff"]["after"] == {"id": "d2", "commit_ref": HISTORY[3]["commit_ref"], "title": "title d2",
                                           "branch": "main", "locked": True}
    assert fake.writes == []


def test_real_run_restores_locks_and_verifies_then_is_idempotent(monkeypatch):
    fake = FakeClient()
    out = restore(fake, monkeypatch, deploy_id="d2")
    assert out.result["changed"] is True
    assert fake.writes == [("restore", "d2"), ("lock", "d2")]
    assert out.result["verified"] is True and out.result["locked"] is True
    assert out.result["api_calls"] == fake.calls
    again = restore(fake, monkeypatch, deploy_id="d2", check=True)
    assert again.result["changed"] is False
    again = restore(fake, monkeypatch, deploy_id="d2", diff=True)
    assert again.result["changed"] is False
    assert again.result["diff"]["before"] == again.result["diff"]["after"]
    assert fake.writes == [("restore", "d2"), ("lock", "d2")]


def test_a_confirmed_plan_costs_the_writes_and_one_verification_read(monkeypatch):
    fake = FakeClient()
    plan = restore(fake, monkeypatch, check=True).result
    assert plan["writes"] == {"restore": True, "lock": True} and fake.writes == []
    reads = fake.calls
    out = restore(fake, monkeypatch, deploy_id=plan["deploy"]["id"], plan=plan)
    assert not out.failed, out.result
    assert fake.writes == [("restore", "d2"), ("lock", "d2")]
    assert fake.calls - reads == 3                      # restore, lock, GET site
    assert out.result["verified"] is True and out.result["locked"] is True
    assert out.result["previous_deploy"]["id"] == "d5"
    assert [d["id"] for d in out.result["reverted_deploys"]] == ["d5"]


def test_a_plan_that_only_locks_does_not_restore(monkeypatch):
    fake = FakeClient(published="d2")
    plan = restore(fake, monkeypatch, deploy_id="d2", check=True).result
    out = restore(fake, monkeypatch, deploy_id="d2", plan=plan)
    assert fake.writes == [("lock", "d2")] and out.result["locked"] is True


@pytest.mark.parametrize("plan, message", [
    ({"deploy": {"id": "d2"}}, "plan must be the registered result of a check-mode run"),
    ({"site": {"id": SITE}, "deploy": {"id": "d1"}, "writes": {"restore": True, "lock": True}}, "deploy_id d2 is not the plan's target d1"),
])
def test_a_wrong_plan_is_refused_before_any_write(monkeypatch, plan, message):
    fake = FakeClient()
    out = restore(fake, monkeypatch, deploy_id="d2", plan=plan)
    assert out.failed and message in out.result["msg"], out.result
    assert fake.writes == [] and fake.calls == 0


def test_published_but_unlocked_target_is_only_locked(monkeypatch):
    fake = FakeClient(published="d2")
    out = restore(fake, monkeypatch, deploy_id="d2")
    assert out.result["changed"] is True
    assert fake.writes == [("lock", "d2")]
    assert out.result["direction"] == "none"


def test_lock_false_restores_without_locking(monkeypatch):
    fake = FakeClient()
    out = restore(fake, monkeypatch, commit_ref=HISTORY[4]["commit_ref"][:8], lock=False)
    assert fake.writes == [("restore", "d1")]
    assert out.result["locked"] is False
    assert [d["id"] for d in out.result["reverted_deploys"]] == ["d5", "d2"]


@pytest.mark.parametrize("args, message", [
    ({"deploy_id": "d4"}, "Checking deploy d4 of site site-1: deploy d4 cannot be published: its state is error"),
    ({"deploy_id": "x1"}, "deploy x1 belongs to site site-2, not to site site-1"),
    ({"deploy_id": "nope"}, "Reading deploy nope (deploy_id) failed: GET /deploys/nope: HTTP 404"),
    ({"steps_back": 3}, "steps_back=3, but there are only 2 ready production deploys"),
    ({"commit_ref": "d"}, "too short"),
    ({"site_id": "other.netlify.app"}, "Reading site other.netlify.app failed: GET /sites/other.netlify.app: HTTP 404"),
])
def test_invalid_targets_fail_before_any_write(monkeypatch, args, message):
    fake = FakeClient()
    out = restore(fake, monkeypatch, **args)
    assert out.failed
    assert message in out.result["msg"]
    assert out.result["msg"].endswith("Nothing was changed.")
    assert fake.writes == []


def test_selectors_are_mutually_exclusive(monkeypatch):
    fake = FakeClient()
    out = restore(fake, monkeypatch, deploy_id="d2", steps_back=2)
    assert out.failed and "mutually exclusive" in out.result["msg"]


def test_verification_failure_is_reported_with_what_was_done(monkeypatch):
    fake = FakeClient(verify_lies=True)
    out = restore(fake, monkeypatch, deploy_id="d2")
    assert out.failed
    assert "Verifying that site site-1 publishes deploy d2" in out.result["msg"]
    assert "reports d5" in out.result["msg"]
    assert out.result["msg"].endswith("Already done: restored deploy d2; locked deploy d2.")


def test_write_failures_say_the_outcome_is_unknown_or_partial(monkeypatch):
    out = restore(FakeClient(fail_on="restore"), monkeypatch, deploy_id="d2")
    assert "Restoring deploy d2 of site site-1 failed" in out.result["msg"]
    assert "may have taken effect" in out.result["msg"]
    out = restore(FakeClient(fail_on="lock"), monkeypatch, deploy_id="d2")
    assert "Locking deploy d2 of site site-1 failed" in out.result["msg"]
    assert out.result["msg"].endswith("Already done: restored deploy d2.")


def test_token_is_masked_in_results(monkeypatch):
    fake = FakeClient()
    out = restore(fake, monkeypatch, deploy_id="d2", check=True)
    assert TOKEN not in repr(out.result)


def test_info_lists_deploys_and_the_published_one(monkeypatch):
    fake = FakeClient()
    out = run(netlify_deploy_info, fake, monkeypatch, site_id="example.netlify.app", check=True)
    assert not out.failed
    assert out.result["changed"] is False
    assert [d["id"] for d in out.result["deploys"]] == ["d5", "d4", "d3", "d2", "d1"]
    assert set(out.result["deploys"][0]) >= {"id", "state", "context", "branch", "commit_ref", "title", "created_at",
                                             "published_at", "locked", "deploy_url"}
    assert out.result["published_deploy"]["id"] == "d5"
    assert out.result["site"]["id"] == SITE
    assert fake.writes == []


def test_info_reports_api_errors_with_the_site(monkeypatch):
    out = run(netlify_deploy_info, FakeClient(), monkeypatch, site_id="missing")
    assert out.failed and out.result["msg"].startswith("Reading site missing failed: GET /sites/missing: HTTP 404")


def test_info_refuses_a_negative_limit(monkeypatch):
    out = run(netlify_deploy_info, FakeClient(), monkeypatch, site_id=SITE, limit=-1)
    assert out.failed and "limit" in out.result["msg"]

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two modules run through ansible-playbook against the emulator: pagination, filters,
slow answers, rate limits, retries that give up, and a restore the API does not apply."""
from netlify_emulator.fixture_ids import HEADER_FIX, PUBLISHED, SITE_DOMAIN, SITE_ID

INFO = "ops.rollback.netlify_deploy_info"
RESTORE = "ops.rollback.netlify_deploy_restore"


def test_info_follows_pagination_and_filters(netlify, module):
    _run, out = module(INFO, {"site_id": SITE_DOMAIN, "production": True, "limit": 0}, check=True)
    assert not out.get("failed"), out
    ids = [d["id"] for d in out["deploys"]]
    assert len(ids) == 10 and ids[0] == PUBLISHED
    assert all(d["context"] == "production" for d in out["deploys"])
    assert out["published_deploy"]["id"] == PUBLISHED
    assert out["site"]["id"] == SITE_ID
    assert out["changed"] is False
    pages = [r["query"] for r in netlify.api_requests("GET") if r["path"].endswith("/deploys")]
    assert pages == ["production=true&per_page=100", "production=true&page=2&per_page=4",
                     "production=true&page=3&per_page=4"]
    assert out["api_calls"] == 4
    assert all(r["user_agent"].startswith("ansible-collection-ops.rollback/") for r in netlify.api_requests())


def test_info_state_filter_and_limit(netlify, module):
    _run, out = module(INFO, {"site_id": SITE_ID, "state": "error", "limit": 1})
    assert [(d["state"], d["title"]) for d in out["deploys"]] == [("error", "Switch image pipeline")]
    assert netlify.api_requests("GET")[-1]["query"] == "state=error&per_page=1"


def test_slow_answer_and_rate_limit_reset_are_retried(netlify, module):
    netlify.fault(method="GET", path="^/api/v1/sites/[^/]+$", delay=2.0)
    netlify.fault(method="POST", path="/lock$", status=429, rate_limit_reset_in=1)
    _run, out = module(RESTORE, {"site_id": SITE_ID, "deploy_id": HEADER_FIX, "timeout": 0.5})
    assert not out.get("failed"), out
    assert out["changed"] is True and out["verified"] is True
    problems = [r["problem"] for r in out["retries"]]
    assert problems[0].startswith("no answer within 0.5 s")
    assert problems[1].startswith("HTTP 429")
    assert netlify.published() == HEADER_FIX and netlify.deploy(HEADER_FIX)["locked"] is True


def test_retries_are_bounded_and_nothing_is_written(netlify, module):
    netlify.fault(method="GET", status=503, times=3)
    _run, out = module(RESTORE, {"site_id": SITE_ID, "deploy_id": HEADER_FIX, "max_retries": 2})
    assert out["failed"] is True
    assert out["msg"] == ("Reading site %s failed: GET /sites/%s: HTTP 503 Service Unavailable (gave up after "
                          "3 attempts). Nothing was changed." % (SITE_ID, SITE_ID))
    assert out["api_calls"] == 3
    assert netlify.writes() == []


def test_a_restore_the_api_does_not_apply_fails_verification(netlify, module):
    netlify.fault(method="POST", path="/restore$", no_effect=True)
    _run, out = module(RESTORE, {"site_id": SITE_ID, "deploy_id": HEADER_FIX, "lock": False})
    assert out["failed"] is True
    assert "Verifying that site %s publishes deploy %s" % (SITE_ID, HEADER_FIX) in out["msg"]
    assert "the API reports %s" % PUBLISHED in out["msg"]
    assert out["msg"].endswith("Already done: restored deploy %s." % HEADER_FIX)
    assert netlify.published() == PUBLISHED

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ops.rollback.netlify_rollback playbook against the emulator.

Each selector runs check mode, real, check mode, real; after each run the test reads the
emulator's state (published deploy, locks, write requests) rather than trusting the output.
"""
import json
import os

from netlify_emulator.fixture_ids import (
    ASTRO,
    ERRORED,
    HEADER_COMMIT,
    HEADER_FIX,
    NAVIGATION,
    OTHER_SITE_DEPLOY,
    PUBLISHED,
    SITE_DOMAIN,
    SITE_ID,
)

PLAN = "List the deploys and work out the target"
RESTORE = "Publish the target deploy, lock it and verify the API state"


def result(run, name):
    results = run.task_results(name)
    assert len(results) == 1, (name, run.stdout[-3000:], run.stderr[-3000:])
    return results[0]


def ok(run):
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def failed(run):
    assert run.rc != 0, run.stdout[-4000:]
    return run


def history(rollback):
    if not rollback.history_file.exists():
        return []
    return [json.loads(line) for line in rollback.history_file.read_text().splitlines()]


def test_deploy_id_check_real_check_real(netlify, rollback):
    # 1. Check mode: reports what would be published, writes nothing.
    run = ok(rollback(check=True, diff=True, deploy_id=HEADER_FIX))
    plan = result(run, PLAN)
    assert plan["changed"] is True
    assert plan["deploy"]["id"] == HEADER_FIX
    assert plan["diff"]["before"]["id"] == PUBLISHED
    assert plan["diff"]["after"] == {"id": HEADER_FIX, "commit_ref": HEADER_COMMIT, "title": "Fix header contrast",
                                     "branch": "main", "locked": True}
    assert netlify.published() == PUBLISHED
    assert netlify.writes() == []
    assert result(run, RESTORE).get("skipped") is True
    assert history(rollback) == []

    # 2. Real: restore, lock, verify, record.
    run = ok(rollback(deploy_id=HEADER_FIX, confirm="ROLLBACK", reason="broken pricing page"))
    restore = result(run, RESTORE)
    assert restore["changed"] is True and restore["verified"] is True and restore["locked"] is True
    assert netlify.published() == HEADER_FIX
    assert netlify.deploy(HEADER_FIX)["locked"] is True
    writes = [w["path"] for w in netlify.writes()]
    assert writes == ["/api/v1/sites/%s/deploys/%s/restore" % (SITE_ID, HEADER_FIX),
                      "/api/v1/deploys/%s/lock" % HEADER_FIX]
    (record,) = history(rollback)
    assert record["outcome"] == "published"
    assert record["from"]["id"] == PUBLISHED and record["to"]["id"] == HEADER_FIX
    assert record["reason"] == "broken pricing page"
    assert record["user"] == (os.environ.get("USER") or "unknown")
    assert record["reverted"] == [PUBLISHED] and record["locked"] is True
    # the report beside the history: Markdown and JSON, owner-only, naming both deploys
    report = rollback.history_file.parent / "reports"
    assert record["report"].startswith(str(report)) and os.path.exists(record["report"]), record["report"]
    assert oct(os.stat(record["report"]).st_mode & 0o777) == "0o600"
    assert oct(os.stat(report).st_mode & 0o777) == "0o700"
    text = open(record["report"], encoding="utf-8").read()
    assert "| outcome | published |" in text and HEADER_FIX in text and PUBLISHED in text, text
    with open(record["report"][:-3] + ".json", encoding="utf-8") as handle:
        assert json.load(handle)["to"]["id"] == HEADER_FIX

    # 3. Check mode again: nothing to do.
    run = ok(rollback(check=True, deploy_id=HEADER_FIX))
    assert result(run, PLAN)["changed"] is False
    assert result(run, RESTORE).get("skipped") is True
    assert run.stats["localhost"]["changed"] == 0

    # 4. Real again: nothing written, no confirm needed, nothing recorded.
    run = ok(rollback(deploy_id=HEADER_FIX))
    assert run.stats["localhost"]["changed"] == 0
    assert len(netlify.writes()) == 2
    assert len(history(rollback)) == 1
    assert netlify.published() == HEADER_FIX

    # The lock holds: a git push builds a new deploy but does not publish it.
    pushed = netlify.push(title="Next commit")
    assert pushed["auto_publish_locked"] is True and pushed["published"] is False
    assert netlify.published() == HEADER_FIX


def test_commit_ref_and_site_domain_check_real_check_real(netlify, rollback):
    # The commit was built twice (production and a staging branch deploy): production wins.
    prefix = HEADER_COMMIT[:7]
    run = ok(rollback(check=True, site_id=SITE_DOMAIN, commit_ref=prefix))
    assert result(run, PLAN)["changed"] is True
    assert result(run, PLAN)["deploy"]["id"] == HEADER_FIX
    assert netlify.writes() == []

    run = ok(rollback(site_id=SITE_DOMAIN, commit_ref=prefix, confirm="ROLLBACK", verify_url=True))
    assert result(run, RESTORE)["changed"] is True
    assert netlify.published() == HEADER_FIX
    checked = result(run, "Check that the site answers over HTTP")
    assert checked["status"] == 200 and checked["url"].endswith("/_sites/ops-demo/")

    run = ok(rollback(check=True, site_id=SITE_DOMAIN, commit_ref=prefix))
    assert result(run, PLAN)["changed"] is False

    run = ok(rollback(site_id=SITE_DOMAIN, commit_ref=prefix, confirm="ROLLBACK"))
    assert run.stats["localhost"]["changed"] == 0
    assert len(netlify.writes()) == 2


def test_steps_back_check_real_check_real(netlify, rollback):
    """steps_back counts from what is published at each run (documented): each real run steps further."""
    run = ok(rollback(check=True))  # steps_back defaults to 1
    plan = result(run, PLAN)
    assert plan["changed"] is True and plan["deploy"]["id"] == HEADER_FIX
    assert [d["id"] for d in plan["reverted_deploys"]] == [PUBLISHED]
    assert "Rolling back; 1 deploy(s) taken off" in result(run, "Show the target and the deploys it reverts")["msg"]
    assert netlify.published() == PUBLISHED and netlify.writes() == []

    ok(rollback(steps_back=1, confirm="ROLLBACK"))
    assert netlify.published() == HEADER_FIX

    # From HEADER_FIX one step back skips the branch deploy and the skipped deploy.
    run = ok(rollback(check=True, steps_back=1))
    plan = result(run, PLAN)
    assert plan["changed"] is True and plan["deploy"]["id"] == ASTRO
    assert netlify.published() == HEADER_FIX and len(netlify.writes()) == 2

    # At -vvv the module results and the diff are printed; the token is not (rollback() checks every run).
    run = ok(rollback(steps_back=1, confirm="ROLLBACK", verbosity=3, diff=True, json_output=False))
    assert "api_calls:" in run.stdout and "+    id: %s" % ASTRO in run.stdout
    assert netlify.published() == ASTRO
    assert netlify.deploy(ASTRO)["locked"] is True
    assert [r["to"]["id"] for r in history(rollback)] == [HEADER_FIX, ASTRO]


def test_commit_prefixes_ambiguous_or_unique(netlify, rollback):
    run = failed(rollback(check=True, commit_ref="abc1234"))
    assert "ambiguous" in run.stdout
    run = ok(rollback(check=True, commit_ref="abc1234d"))
    assert result(run, PLAN)["deploy"]["id"] == NAVIGATION
    assert netlify.writes() == []


def test_without_confirm_nothing_is_written(netlify, rollback):
    run = failed(rollback(deploy_id=ASTRO))
    assert "-e confirm=ROLLBACK" in run.stdout
    assert netlify.writes() == [] and netlify.published() == PUBLISHED


def test_lock_false_leaves_auto_publishing_on(netlify, rollback):
    ok(rollback(deploy_id=HEADER_FIX, confirm="ROLLBACK", lock=False))
    assert netlify.published() == HEADER_FIX
    assert netlify.deploy(HEADER_FIX)["locked"] is False
    assert [w["path"].rsplit("/", 1)[-1] for w in netlify.writes()] == ["restore"]
    pushed = netlify.push(title="Next commit")
    assert pushed["published"] is True
    assert netlify.published() == pushed["deploy"]["id"]


def test_429_and_500_are_retried_and_succeed(netlify, rollback):
    netlify.fault(method="GET", path="^/api/v1/sites/[^/]+$", status=429, retry_after=1)
    netlify.fault(method="POST", path="/restore$", status=500, times=2)
    run = ok(rollback(deploy_id=HEADER_FIX, confirm="ROLLBACK"))
    assert netlify.published() == HEADER_FIX
    statuses = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in netlify.api_requests()]
    assert statuses[0] == ("GET", SITE_ID, 429) and statuses[1] == ("GET", SITE_ID, 200)
    assert [s for s in statuses if s[1] == "restore"] == [("POST", "restore", 500), ("POST", "restore", 500),
                                                          ("POST", "restore", 201)]
    retries = result(run, RESTORE)["retries"]
    assert [r["problem"][:8] for r in retries] == ["HTTP 500", "HTTP 500"]
    assert result(run, PLAN)["retries"][0]["delay"] == 1.0


def test_401_fails_clearly_and_the_token_never_shows_at_vvv(netlify, rollback):
    wrong = "nfp_wrong_" + netlify.token[::-1]
    run = failed(rollback(check=True, verbosity=3, token=wrong, json_output=False))
    output = run.stdout + run.stderr
    assert "Reading site %s failed: GET /sites/%s: HTTP 401" % (SITE_ID, SITE_ID) in output
    assert "NETLIFY_AUTH_TOKEN" in output
    assert wrong not in output and netlify.token not in output   # rollback() also checks this for every run
    assert netlify.writes() == []


def test_404_fails_clearly(netlify, rollback):
    run = failed(rollback(check=True, verbosity=3, site_id="no-such-site.netlify.app", json_output=False))
    assert ("Reading site no-such-site.netlify.app failed: GET /sites/no-such-site.netlify.app: HTTP 404"
            in run.stdout)
    assert netlify.token not in run.stdout + run.stderr


def test_error_deploy_and_other_sites_deploy_are_refused_with_nothing_written(netlify, rollback):
    run = failed(rollback(deploy_id=ERRORED, confirm="ROLLBACK"))
    assert "deploy %s cannot be published: its state is error, not ready" % ERRORED in run.stdout
    run = failed(rollback(deploy_id=OTHER_SITE_DEPLOY, confirm="ROLLBACK"))
    assert "belongs to site" in run.stdout and "Nothing was changed." in run.stdout
    assert netlify.writes() == [] and netlify.published() == PUBLISHED


def test_a_failed_site_check_publishes_the_recovery_point_again(netlify, rollback):
    netlify.fault(method="GET", path="^/_sites/", status=503)
    run = failed(rollback(deploy_id=HEADER_FIX, confirm="ROLLBACK", verify_url=True, reason="test recovery"))
    message = result(run, "Report the failure and the recovery")["msg"]
    assert 'failed at "Check that the site answers over HTTP"' in message
    assert "Published the recovery point %s again." % PUBLISHED in message
    assert netlify.published() == PUBLISHED
    assert [w["path"].rsplit("/", 2)[-2] for w in netlify.writes()] == [HEADER_FIX, HEADER_FIX, PUBLISHED]
    (record,) = history(rollback)
    assert record["outcome"] == "failed, recovered" and "503" in record["error"]
    assert record["to"]["id"] == HEADER_FIX and record["from"]["id"] == PUBLISHED
    text = open(record["report"], encoding="utf-8").read()
    assert "| outcome | failed, recovered |" in text and "## Failure" in text and "503" in text, text
    assert "Published the recovery point %s again." % PUBLISHED in text

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_verify: the pure decisions of compose_verify, each with its passing and failing branches."""

from __future__ import annotations

import datetime
import re

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _verify as v

UTC = datetime.timezone.utc
NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def container(name, service, running=True, restarting=False, paused=False, status=None, exit_code=0,
              health=None, restart_count=0, started_at="2024-05-01T11:00:00.123456789Z"):
    state = {"Running": running, "Restarting": restarting, "Paused": paused, "ExitCode": exit_code,
             "Status": status or ("running" if running else "exited"), "StartedAt": started_at}
    if health is not None:
        state["Health"] = {"Status": health}
    return {"Id": name + "-id", "Name": "/" + name, "RestartCount": restart_count, "State": state,
            "Config": {"Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": service}}}


# -- parse_time -------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("2024-05-01T12:00:00Z", NOW),
    ("2024-05-01T12:00:00.123456789Z", NOW.replace(microsecond=123456)),
    ("2024-05-01T12:00:00.5z", NOW.replace(microsecond=500000)),
    ("2024-05-01T14:00:00+02:00", NOW),
    ("2024-05-01 10:30:00-0130", NOW),
])
def test_parse_time_reads_rfc3339_as_utc(value, expected):
    assert v.parse_time(value) == expected


@pytest.mark.parametrize("value", ["", None, "0001-01-01T00:00:00Z"])
def test_parse_time_gives_none_for_empty_and_docker_zero_time(value):
    assert v.parse_time(value) is None


@pytest.mark.parametrize("value", ["yesterday", "2024-05-01", "2024-05-01T12:00:00", "10m"])
def test_parse_time_refuses_what_is_not_rfc3339(value):
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        v.parse_time(value)


# -- input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/health", "https://example.com", "http://h/?a=b", "http://[::1]:80/x"])
def test_is_http_url_accepts_http_urls_with_a_host(url):
    assert v.is_http_url(url)


@pytest.mark.parametrize("url", ["ftp://h/x", "http://", "http:///x", "htp:/127.0.0.1/health", "127.0.0.1:80", "", None, 42,
                                 "http://a b/"])
def test_is_http_url_refuses_the_rest(url):
    assert not v.is_http_url(url)


def test_compile_patterns_compiles_and_names_the_bad_one():
    assert [p.pattern for p in v.compile_patterns(["a", "(?i)b"], "opt")] == ["a", "(?i)b"]
    assert v.compile_patterns(None, "opt") == []
    with pytest.raises(v.InputError, match=r"opt\[1\]: '\(x' is not a valid regular expression"):
        v.compile_patterns(["a", "(x"], "opt")


def url(**kw):
    entry = dict(url="http://h/health", status=200, body_regex=None, json_field=None, json_value=None,
                 retries=1, delay=0, timeout=1, validate_certs=True)
    entry.update(kw)
    return entry


def test_validate_health_urls_accepts_good_entries():
    v.validate_health_urls([url(), url(json_field="a.b", json_value=1, body_regex="ok")])


@pytest.mark.parametrize("entry, message", [
    (url(url="ftp://h"), r"health_urls\[1\]\.url: 'ftp://h' is not an http"),
    (url(status=42), r"health_urls\[1\]\.status: 42 is not an HTTP status"),
    (url(retries=-1), r"health_urls\[1\]\.retries: must not be negative"),
    (url(delay=-0.5), r"health_urls\[1\]\.delay: must not be negative"),
    (url(timeout=-1), r"health_urls\[1\]\.timeout: must not be negative"),
    (url(json_value="ok"), r"health_urls\[1\]\.json_value: needs json_field"),
    (url(body_regex="("), r"health_urls\[1\]\.body_regex\[0\]: '\(' is not a valid regular expression"),
])
def test_validate_health_urls_names_the_bad_field(entry, message):
    with pytest.raises(v.InputError, match=message):
        v.validate_health_urls([url(), entry])


def check(**kw):
    entry = dict(name="items", service="db", argv=["psql"], user=None, expected=None, compare_to_baseline=False, strip=True)
    entry.update(kw)
    return entry


def test_validate_integrity_checks_accepts_good_entries():
    v.validate_integrity_checks([check(), check(name="other", compare_to_baseline=True)], {"other": "1"}, False)
    v.validate_integrity_checks([check(compare_to_baseline=True)], {}, True)


@pytest.mark.parametrize("entries, message", [
    ([check(name="")], r"integrity_checks\[0\]\.name: must not be empty"),
    ([check(), check()], r"integrity_checks\[1\]\.name: 'items' is used by more than one check"),
    ([check(service="")], r"integrity_checks\[0\]\.service: must not be empty"),
    ([check(argv=[])], r"integrity_checks\[0\]\.argv: must be a non-empty list"),
    ([check(compare_to_baseline=True)], r"integrity_checks\[0\]\.compare_to_baseline: no baseline for 'items'"),
])
def test_validate_integrity_checks_names_the_bad_field(entries, message):
    with pytest.raises(v.InputError, match=message):
        v.validate_integrity_checks(entries, {}, False)


# -- running ----------------------------------------------------------------------------------
def test_expected_replicas_reads_replicas_scale_and_overrides():
    config = {"services": {
        "web": {"deploy": {"replicas": 3}, "scale": 2},
        "worker": {"scale": 2},
        "off": {"scale": 0},
        "db": {},
        "agent": {"deploy": {"mode": "global"}},
        "cron": None,
    }}
    assert v.expected_replicas(config, {"db": "2", "extra": 0}) == {
        "web": 3, "worker": 2, "off": 0, "db": 2, "agent": 1, "cron": 1, "extra": 0}
    assert v.expected_replicas({}, None) == {}


@pytest.mark.parametrize("kw, running, word", [
    ({}, True, "running"),
    ({"restarting": True}, False, "restarting"),
    ({"paused": True}, False, "paused"),
    ({"running": False, "exit_code": 137}, False, "exited (137)"),
    ({"running": False, "status": "created"}, False, "created"),
])
def test_is_running_and_state_word(kw, running, word):
    c = container("shop-web-1", "web", **kw)
    assert v.is_running(c) is running
    assert v.state_word(c) == word


def test_check_running_passes_when_counts_match():
    containers = [container("shop-web-1", "web"), container("shop-web-2", "web"), container("shop-db-1", "db"),
                  {"Name": "/stray", "State": {"Running": True}, "Config": {"Labels": {}}}]
    passed, detail = v.check_running({"web": 2, "db": 1, "off": 0}, containers)
    assert passed
    assert detail == "db 1/1, off 0/0, web 2/2 running"


def test_check_running_names_missing_extra_and_stopped_containers():
    containers = [container("shop-web-1", "web", running=False, exit_code=1), container("shop-db-1", "db"),
                  container("shop-db-2", "db"), container("shop-debug-1", "debug")]
    passed, detail = v.check_running({"web": 1, "db": 1}, containers)
    assert not passed
    assert detail == ("db: 2 of 1 running; debug: 1 of 0 running; "
                      "web: 0 of 1 running (shop-web-1 exited (1))")


def test_check_running_with_nothing_expected():
    assert v.check_running({}, []) == (True, "no service expected to run")


# -- health -----------------------------------------------------------------------------------
def test_health_decision_done_when_all_healthy_or_none_has_a_check():
    assert v.health_decision([container("a", "web")]) == (True, True, "no running container has a healthcheck")
    done, passed, detail = v.health_decision([container("b", "db", health="healthy"), container("a", "web", health="healthy"),
                                              container("c", "x", running=False, health="unhealthy")])
    assert (done, passed, detail) == (True, True, "healthy: a, b")


def test_health_decision_waits_on_starting_and_unhealthy():
    done, passed, detail = v.health_decision([container("a", "web", health="starting"),
                                              container("b", "db", health="unhealthy"),
                                              container("c", "x", health="healthy")])
    assert (done, passed) == (False, False)
    assert detail == "a is starting, b is unhealthy"


def test_health_of_restarting_container_counts():
    assert v.health_of(container("a", "web", running=False, restarting=True, health="starting")) == "starting"
    assert v.health_of(container("a", "web", health=None)) is None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_health_polls_until_healthy():
    clock = FakeClock()
    looks = iter([[container("a", "web", health="starting")], [container("a", "web", health="healthy")]])
    passed, detail, last = v.wait_for_health(lambda: next(looks), 10, clock, clock.sleep)
    assert passed and detail == "healthy: a"
    assert clock.sleeps == [1.0]
    assert v.health_of(last[0]) == "healthy"


def test_wait_for_health_gives_up_after_the_timeout():
    clock = FakeClock()
    passed, detail, _last = v.wait_for_health(lambda: [container("a", "web", health="unhealthy")], 2.5, clock, clock.sleep)
    assert not passed
    assert detail == "a is unhealthy after 2.5s"
    assert clock.sleeps == [1.0, 1.0, 0.5]


def test_wait_for_health_with_zero_timeout_looks_once():
    clock = FakeClock()
    passed, _detail, _last = v.wait_for_health(lambda: [container("a", "web", health="starting")], 0, clock, clock.sleep)
    assert not passed and clock.sleeps == []


# -- restarts ---------------------------------------------------------------------------------
def test_restart_problem_restarting_now_always_counts():
    c = container("a", "web", running=False, restarting=True, restart_count=4)
    assert v.restart_problem(c, None, NOW, 300) == "restarting (4 restarts)"
    assert v.restart_problem(c, NOW, NOW, 300) == "restarting (4 restarts)"


def test_restart_problem_never_restarted_is_fine():
    assert v.restart_problem(container("a", "web", started_at="2024-05-01T11:59:59Z"), None, NOW, 300) is None


def test_restart_problem_without_since_judges_by_window():
    recent = container("a", "web", restart_count=2, started_at="2024-05-01T11:59:00Z")
    old = container("a", "web", restart_count=2, started_at="2024-05-01T11:00:00Z")
    assert v.restart_problem(recent, None, NOW, 300) == "2 restarts, last start 60s ago"
    assert v.restart_problem(old, None, NOW, 300) is None


def test_restart_problem_with_since_judges_by_last_start():
    c = container("a", "web", restart_count=1, started_at="2024-05-01T11:00:00Z")
    assert v.restart_problem(c, v.parse_time("2024-05-01T12:00:00Z"), NOW, 300) is None
    problem = v.restart_problem(c, v.parse_time("2024-05-01T10:00:00Z"), NOW, 300)
    assert problem.startswith("1 restarts, last start 2024-05-01T11:00:00Z is after 2024-05-01T10:00:00")


def test_restart_problem_never_started():
    c = container("a", "web", restart_count=1, running=False, started_at="0001-01-01T00:00:00Z")
    assert v.restart_problem(c, None, NOW, 300) is None


def test_check_restarts():
    good = [container("a", "web")]
    assert v.check_restarts(good, None, NOW, 300) == (True, "no restarts in the last 300s")
    assert v.check_restarts(good, NOW, NOW, 300)[1].startswith("no restarts since 2024-05-01T12:00:00")
    bad = good + [container("b", "web", running=False, restarting=True, restart_count=3)]
    assert v.check_restarts(bad, None, NOW, 300) == (False, "b: restarting (3 restarts)")


# -- logs -------------------------------------------------------------------------------------
ERRORS = [re.compile(r"(?i)\b(error|fatal|panic|traceback)\b")]


def test_error_lines_matches_and_honours_the_allowlist():
    text = "start\nERROR something broke\nlevel=error known glitch\nno errors here\nTraceback (most recent call last):\n"
    assert v.error_lines(text, ERRORS, []) == ["ERROR something broke", "level=error known glitch",
                                               "Traceback (most recent call last):"]
    allowed = v.error_lines(text, ERRORS, [re.compile("known glitch")])
    assert allowed == ["ERROR something broke", "Traceback (most recent call last):"]
    assert v.error_lines("", ERRORS, []) == []
    assert v.error_lines(None, ERRORS, []) == []


def test_log_since_uses_the_option_or_the_last_start():
    c = container("a", "web", started_at="2024-05-01T11:00:00.1Z")
    assert v.log_since(c, "10m") == "10m"
    assert v.log_since(c, "") == "2024-05-01T11:00:00.1Z"
    assert v.log_since(container("a", "web", started_at="0001-01-01T00:00:00Z"), "") is None


def test_check_logs():
    assert v.check_logs({"a": [], "b": []}) == (True, "no error lines in 2 container logs")
    passed, detail = v.check_logs({"b": ["ERROR x"], "a": ["e1", "e2", "e3", "e4", "e5"], "c": []})
    assert not passed
    assert detail == ("a: 5 error lines: 'e1'; 'e2'; 'e3' and 2 more; "
                      "b: 1 error line: 'ERROR x'")


# -- http -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, expected", [
    ("version", "v1"), ("a.b", 2), ("items.0.id", 7), ("items.-1.id", 8), ("a", {"b": 2}),
])
def test_json_lookup_finds_dotted_paths(path, expected):
    data = {"version": "v1", "a": {"b": 2}, "items": [{"id": 7}, {"id": 8}]}
    assert v.json_lookup(data, path) == expected


@pytest.mark.parametrize("path", ["nope", "a.c", "items.2.id", "items.x", "version.x"])
def test_json_lookup_missing(path):
    data = {"version": "v1", "a": {"b": 2}, "items": [{"id": 7}, {"id": 8}]}
    assert v.json_lookup(data, path) is v.MISSING


@pytest.mark.parametrize("actual, expected, same", [
    ("ok", "ok", True), (1, "1", True), (True, "true", True), (None, "null", True),
    ({"a": 1}, {"a": 1}, True), (1, True, False), ("v2", "v1", False), (1.0, "1", False),
])
def test_same_value(actual, expected, same):
    assert v.same_value(actual, expected) is same


def test_check_http_passes():
    assert v.check_http(url(), 200, "x") == (True, "status 200")
    passed, detail = v.check_http(url(status=204, body_regex="^v1$"), 204, "v1\n")
    assert passed and detail == "status 204, body matches '^v1$'"
    passed, detail = v.check_http(url(json_field="status", json_value="ok"), 200, '{"status": "ok", "version": "v1"}')
    assert passed and detail == "status 200, status = ok"
    assert v.check_http(url(json_field="version"), 200, '{"version": "v3"}') == (True, "status 200, version = v3")


@pytest.mark.parametrize("expect, status, body, detail", [
    (url(), None, "connection refused", "no answer: connection refused"),
    (url(), 404, "<h1>Not Found</h1>", "status 404, expected 200 (body: '<h1>Not Found</h1>')"),
    (url(body_regex="^v9$"), 200, "v1\n", "body does not match '^v9$' (body: 'v1')"),
    (url(json_field="status"), 200, "not json", "body is not JSON (body: 'not json')"),
    (url(json_field="a.b"), 200, '{"a": {}}', "JSON field 'a.b' missing (body: '{\"a\": {}}')"),
    (url(json_field="version", json_value="v9"), 200, '{"version": "v1"}', "JSON field 'version' is v1, expected v9"),
])
def test_check_http_fails_with_a_reason(expect, status, body, detail):
    assert v.check_http(expect, status, body) == (False, detail)


def test_check_http_shortens_long_bodies():
    _passed, detail = v.check_http(url(), 500, "x" * 500)
    assert detail == "status 500, expected 200 (body: '%s...')" % ("x" * v.BODY_SHOWN)


# -- integrity --------------------------------------------------------------------------------
def test_command_output():
    assert v.command_output(" 1000\n") == "1000"
    assert v.command_output(" 1000\n", strip=False) == " 1000\n"


def test_check_integrity_capture_compares_nothing():
    assert v.check_integrity("1000", expected="1", baseline="2", capture=True) == (True, "captured baseline '1000'")


def test_check_integrity_against_expected():
    assert v.check_integrity("1000", expected="1000") == (True, "output '1000' as expected")
    assert v.check_integrity("999", expected="1000") == (False, "output '999', expected '1000'")


def test_check_integrity_against_baseline():
    assert v.check_integrity("1000", baseline="1000") == (True, "output '1000' matches the baseline")
    assert v.check_integrity("999", baseline="1000") == (False, "output '999' differs from baseline '1000'")
    assert v.check_integrity("999", baseline=None) == (False, "no baseline to compare output '999' with")


def test_check_integrity_both_and_neither():
    assert v.check_integrity("1", expected="2", baseline="3") == (
        False, "output '1', expected '2'; output '1' differs from baseline '3'")
    assert v.check_integrity("1") == (True, "output '1' (nothing to compare with)")


def test_integrity_target_picks_the_first_running_container_of_the_service():
    containers = [container("shop-db-2", "db"), container("shop-db-1", "db", running=False), container("shop-web-1", "web")]
    assert v.integrity_target(containers, "db")["Id"] == "shop-db-2-id"
    assert v.integrity_target(containers, "cache") is None


# -- result -----------------------------------------------------------------------------------
def test_check_record_unique_name_summary_and_message():
    checks = [v.check_record("running", "running", True, "web 1/1 running", 0.12345),
              v.check_record("logs", "logs", False, "web: 1 error line: 'x'", 0.5)]
    assert checks[0] == dict(name="running", kind="running", passed=True, detail="web 1/1 running", duration_s=0.123)
    assert v.summary_lines(checks) == ["PASS running - web 1/1 running (0.12 s)", "FAIL logs - web: 1 error line: 'x' (0.50 s)"]
    assert v.failure_message("shop", checks) == (
        "Verification of Compose project shop failed: 1 of 2 checks failed: [logs] web: 1 error line: 'x'")
    assert v.failure_message("shop", checks[:1]) == ""
    assert v.unique_name("a", set()) == "a"
    assert v.unique_name("a", {"a", "a (2)"}) == "a (3)"

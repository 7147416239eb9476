# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""compose_verify: the order of the checks, what each reads, the result; input errors; fetch()."""

from __future__ import annotations

import datetime
import http.server
import json
import threading

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.modules import compose_verify
from ansible_collections.ops.rollback.plugins.modules.compose_verify import Verifier, argument_spec, fetch
from ansible_collections.ops.rollback.plugins.module_utils import _verify as v

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
HTTP_PORT = 18412  # 127.0.0.1 only; nothing listens on 18413


def container(name, service, running=True, health="healthy", restart_count=0, started_at="2024-05-01T11:00:00Z"):
    state = {"Running": running, "Restarting": False, "Paused": False, "Status": "running" if running else "exited",
             "ExitCode": 0, "StartedAt": started_at}
    if health:
        state["Health"] = {"Status": health}
    return {"Id": name + "-id", "Name": "/" + name, "RestartCount": restart_count, "State": state,
            "Config": {"Labels": {"com.docker.compose.service": service}}}


class FakeCli:
    def __init__(self, containers, config=None, logs=None, execs=None):
        self.looks = containers if isinstance(containers, list) and containers and isinstance(containers[0], list) \
            else [containers]
        self.config = config or {"services": {"web": {}, "db": {}}}
        self.log_texts = logs or {}
        self.execs = execs or {}
        self.calls = []

    def compose_config(self):
        self.calls.append("config")
        return self.config

    def project_containers(self):
        self.calls.append("ps")
        return self.looks.pop(0) if len(self.looks) > 1 else self.looks[0]

    def logs(self, container_id, since=None):
        self.calls.append(("logs", container_id, since))
        return self.log_texts.get(container_id, "")

    def exec_in(self, container_id, argv, user=None):
        self.calls.append(("exec", container_id, tuple(argv), user))
        return self.execs.get(tuple(argv), (0, "1000\n", ""))


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def params(**kw):
    base = dict(project_dir="/srv/shop", project_name="shop", files=[], check_running=True, check_health=True,
                check_restarts=True, check_logs=True, check_http=True, check_integrity=True, expected_replicas={},
                health_timeout=5, restarts_since="", restarts_window=300, log_since="",
                log_error_patterns=list(compose_verify.DEFAULT_ERROR_PATTERNS), log_allow_patterns=[],
                health_urls=[], integrity_checks=[], integrity_baseline={}, capture_baseline=False)
    base.update(kw)
    return base


def http_check(**kw):
    entry = dict(url="http://127.0.0.1:8080/health", status=200, body_regex=None, json_field=None, json_value=None,
                 retries=2, delay=1, timeout=1, validate_certs=True)
    entry.update(kw)
    return entry


def integrity(**kw):
    entry = dict(name="items", service="db", argv=["psql", "-tAc", "SELECT count(*) FROM items"], user=None,
                 expected=None, compare_to_baseline=False, strip=True)
    entry.update(kw)
    return entry


def run(p, cli, answers=None):
    clock = Clock()
    fetched = []

    def fake_fetch(url, timeout, validate_certs, follow_redirects):
        fetched.append((url, follow_redirects) if follow_redirects is False else url)
        return (answers or {}).get(url, [(200, "ok")]).pop(0)

    verifier = Verifier(p, cli, fetch_url=fake_fetch, clock=clock, sleep=clock.sleep, now=lambda: NOW)
    verifier.validate()
    return verifier.run(), fetched


HEALTHY = [container("shop-web-1", "web"), container("shop-db-1", "db")]


def test_all_checks_pass_in_order_with_a_baseline():
    p = params(health_urls=[http_check()], integrity_checks=[integrity(expected="1000")])
    result, fetched = run(p, FakeCli(HEALTHY))
    assert result["passed"] and result["failed_checks"] == [] and result["changed"] is False
    assert [c["name"] for c in result["checks"]] == [
        "running", "health", "restarts", "logs", "http http://127.0.0.1:8080/health", "integrity items"]
    assert [c["kind"] for c in result["checks"]] == ["running", "health", "restarts", "logs", "http", "integrity"]
    assert all(set(c) == {"name", "kind", "passed", "detail", "duration_s"} for c in result["checks"])
    assert result["baseline"] == {"items": "1000"}
    assert result["msg"] == "All 6 checks of Compose project shop passed"
    assert result["summary"][0] == "PASS running - db 1/1, web 1/1 running (0.00 s)"
    assert fetched == ["http://127.0.0.1:8080/health"]


def test_disabled_checks_do_not_run_and_empty_lists_add_nothing():
    cli = FakeCli(HEALTHY)
    p = params(check_running=False, check_health=False, check_restarts=False, check_logs=False, check_http=False,
               health_urls=[http_check()], integrity_checks=[integrity()], check_integrity=False)
    result, fetched = run(p, cli)
    assert result["checks"] == [] and result["passed"] and fetched == [] and cli.calls == []


def test_failures_are_reported_not_raised_and_all_named_in_the_message():
    containers = [container("shop-web-1", "web", running=False, health="unhealthy"),
                  container("shop-db-1", "db", health="starting", restart_count=2, started_at="2024-05-01T11:59:30Z")]
    cli = FakeCli(containers, logs={"shop-db-1-id": "LOG ready\nFATAL: bad thing\n"},
                  execs={("false",): (1, "", "boom\n")})
    p = params(health_timeout=2, health_urls=[http_check(retries=1)],
               integrity_checks=[integrity(expected="999"), integrity(name="fails", argv=["false"])])
    result, _fetched = run(p, cli, answers={"http://127.0.0.1:8080/health": [(503, "down"), (503, "down")]})
    assert not result["passed"]
    assert result["failed_checks"] == ["running", "health", "restarts", "logs", "http http://127.0.0.1:8080/health",
                                       "integrity items", "integrity fails"]
    details = dict((c["name"], c["detail"]) for c in result["checks"])
    assert details["running"] == "web: 0 of 1 running (shop-web-1 exited (0))"
    assert details["health"] == "shop-db-1 is starting after 2s"
    assert details["restarts"] == "shop-db-1: 2 restarts, last start 30s ago"
    assert details["logs"] == "shop-db-1: 1 error line: 'FATAL: bad thing'"
    assert details["http http://127.0.0.1:8080/health"] == "status 503, expected 200 (body: 'down') (after 2 attempts)"
    assert details["integrity items"] == "output '1000', expected '999'"
    assert details["integrity fails"] == "false in shop-db-1 exited with 1: boom"
    assert result["baseline"] == {"items": "1000"}
    for name in result["failed_checks"]:
        assert "[%s]" % name in result["msg"]


def test_health_polls_fresh_containers_until_healthy():
    cli = FakeCli([[container("shop-web-1", "web", health="starting")], [container("shop-web-1", "web", health="starting")],
                   [container("shop-web-1", "web")]], config={"services": {"web": {}}})
    result, _fetched = run(params(check_running=True), cli)
    assert result["passed"]
    health = result["checks"][1]
    assert health["name"] == "health" and health["detail"] == "healthy: shop-web-1" and health["duration_s"] == 1.0
    assert cli.calls.count("ps") == 3


def test_http_retries_until_the_answer_is_right():
    answers = {"http://127.0.0.1:8080/health": [(None, "refused"), (200, '{"version": "v1"}')]}
    p = params(check_running=False, check_health=False, check_restarts=False, check_logs=False,
               health_urls=[http_check(json_field="version", json_value="v1")])
    result, fetched = run(p, FakeCli(HEALTHY), answers)
    assert result["passed"] and len(fetched) == 2
    assert result["checks"][0]["detail"] == "status 200, version = v1"
    assert result["checks"][0]["duration_s"] == 1.0


def test_same_url_twice_gets_unique_names():
    p = params(check_running=False, check_health=False, check_restarts=False, check_logs=False,
               health_urls=[http_check(), http_check(body_regex="ok")])
    result, _fetched = run(p, FakeCli(HEALTHY))
    assert [c["name"] for c in result["checks"]] == ["http http://127.0.0.1:8080/health",
                                                     "http http://127.0.0.1:8080/health (2)"]


def test_logs_are_read_since_each_start_or_log_since_and_skip_never_started():
    containers = [container("shop-web-1", "web", started_at="2024-05-01T11:00:00.5Z"),
                  container("shop-db-1", "db", running=False, started_at="0001-01-01T00:00:00Z")]
    cli = FakeCli(containers)
    run(params(check_running=False, check_health=False, check_restarts=False), cli)
    assert [c for c in cli.calls if c[0] == "logs"] == [("logs", "shop-web-1-id", "2024-05-01T11:00:00.5Z")]
    cli = FakeCli(containers)
    run(params(check_running=False, check_health=False, check_restarts=False, log_since="10m"), cli)
    assert [c for c in cli.calls if c[0] == "logs"] == [("logs", "shop-web-1-id", "10m"), ("logs", "shop-db-1-id", "10m")]


def test_logs_allowlist():
    cli = FakeCli(HEALTHY, logs={"shop-web-1-id": "ERROR known and harmless\n"})
    result, _fetched = run(params(check_running=False, check_health=False, log_allow_patterns=["harmless$"]), cli)
    assert result["passed"]


def test_restarts_since():
    containers = [container("shop-web-1", "web", restart_count=1, started_at="2024-05-01T10:00:00Z")]
    result, _f = run(params(check_running=False, check_health=False, check_logs=False,
                            restarts_since="2024-05-01T09:00:00Z"), FakeCli(containers))
    assert result["failed_checks"] == ["restarts"]
    result, _f = run(params(check_running=False, check_health=False, check_logs=False,
                            restarts_since="2024-05-01T11:00:00+00:00"), FakeCli(containers))
    assert result["passed"]


def test_integrity_baseline_capture_and_compare():
    cli = FakeCli(HEALTHY)
    only = dict(check_running=False, check_health=False, check_restarts=False, check_logs=False)
    captured, _f = run(params(capture_baseline=True, integrity_checks=[integrity(compare_to_baseline=True)], **only), cli)
    assert captured["passed"] and captured["baseline"] == {"items": "1000"}
    assert captured["checks"][0]["detail"] == "captured baseline '1000'"
    same, _f = run(params(integrity_baseline=captured["baseline"], integrity_checks=[integrity(compare_to_baseline=True)],
                          **only), FakeCli(HEALTHY))
    assert same["passed"]
    cli = FakeCli(HEALTHY, execs={("psql", "-tAc", "SELECT count(*) FROM items"): (0, "999\n", "")})
    changed, _f = run(params(integrity_baseline={"items": "1000"}, integrity_checks=[integrity(compare_to_baseline=True)],
                             **only), cli)
    assert changed["failed_checks"] == ["integrity items"]
    assert changed["checks"][0]["detail"] == "output '999' differs from baseline '1000'"
    assert changed["baseline"] == {"items": "999"}


def test_integrity_user_strip_and_missing_service():
    cli = FakeCli(HEALTHY, execs={("cat", "f"): (0, " a \n", "")})
    only = dict(check_running=False, check_health=False, check_restarts=False, check_logs=False)
    result, _f = run(params(integrity_checks=[integrity(name="raw", argv=["cat", "f"], user="postgres", strip=False,
                                                        expected=" a \n"),
                                              integrity(name="cache", service="cache")], **only), cli)
    assert ("exec", "shop-db-1-id", ("cat", "f"), "postgres") in cli.calls
    assert result["failed_checks"] == ["integrity cache"]
    assert result["checks"][1]["detail"] == "no running container of service cache"


def test_expected_replicas_override():
    result, _f = run(params(check_health=False, expected_replicas={"web": 2}), FakeCli(HEALTHY))
    assert result["checks"][0]["detail"] == "web: 1 of 2 running"


@pytest.mark.parametrize("kw, message", [
    (dict(health_timeout=-1), "health_timeout: must not be negative"),
    (dict(restarts_window=-5), "restarts_window: must not be negative"),
    (dict(expected_replicas={"web": "two"}), "expected_replicas: every value must be a whole number"),
    (dict(expected_replicas={"web": -1}), "expected_replicas.web: must not be negative"),
    (dict(restarts_since="yesterday"), "restarts_since: 'yesterday' is not an RFC 3339 time"),
    (dict(log_error_patterns=["("]), r"log_error_patterns\[0\]"),
    (dict(log_allow_patterns=["ok", "["]), r"log_allow_patterns\[1\]"),
    (dict(health_urls=[http_check(url="nope")]), r"health_urls\[0\]\.url"),
    (dict(integrity_checks=[integrity(), integrity()]), r"integrity_checks\[1\]\.name"),
])
def test_validate_names_the_bad_option(kw, message):
    with pytest.raises(v.InputError, match=message):
        Verifier(params(**kw), None).validate()


def test_main_fails_on_bad_input_before_asking_docker(capsys, monkeypatch):
    monkeypatch.setattr(compose_verify, "DockerCli", lambda *a, **k: pytest.fail("Docker was asked"))
    args = dict(project_dir="/srv/shop", project_name="shop", health_urls=[{"url": "ftp://x"}])
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        compose_verify.main()
    assert exit_info.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True
    assert out["msg"] == ("Invalid input for verifying Compose project shop: "
                          "health_urls[0].url: 'ftp://x' is not an http or https URL with a host")


def test_main_fails_on_a_missing_project_dir_before_asking_docker(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(compose_verify, "DockerCli", lambda *a, **k: pytest.fail("Docker was asked"))
    missing = str(tmp_path / "no-such-stack")
    with patch_module_args(dict(project_dir=missing, project_name="shop")), pytest.raises(SystemExit) as exit_info:
        compose_verify.main()
    assert exit_info.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True and out["project_dir_missing"] is True
    assert out["msg"] == "project_dir: %s is not a directory" % missing


def test_main_runs_and_exits_unchanged_with_the_result(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(compose_verify, "DockerCli", lambda *a, **k: FakeCli(HEALTHY))
    args = dict(project_dir=str(tmp_path), project_name="shop", _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        compose_verify.main()
    assert exit_info.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False and out["passed"] is True
    assert out["failed_checks"] == [] and len(out["checks"]) == 4


def test_argument_spec_defaults_match_the_role_defaults():
    spec = argument_spec()
    assert spec["health_timeout"]["default"] == 60
    assert spec["health_urls"]["options"]["retries"]["default"] == 10
    assert spec["log_error_patterns"]["default"] == [r"(?i)\b(error|fatal|panic|traceback)\b"]


# -- fetch against a real local HTTP server -------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        code, body = {"/health": (200, b'{"status": "ok"}'), "/down": (503, b"down"),
                      "/moved": (302, b"moved")}.get(self.path, (404, b"nope"))
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/health")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", HTTP_PORT), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % HTTP_PORT
    httpd.shutdown()
    httpd.server_close()


def test_fetch_returns_status_and_body(server):
    assert fetch(server + "/health", 2, True) == (200, '{"status": "ok"}')
    assert fetch(server + "/down", 2, True) == (503, "down")
    assert fetch(server + "/missing", 2, True) == (404, "nope")


def test_fetch_follows_redirects_unless_told_not_to(server):
    assert fetch(server + "/moved", 2, True) == (200, '{"status": "ok"}')
    assert fetch(server + "/moved", 2, True, follow_redirects=False) == (302, "moved")


def test_expecting_a_redirect_does_not_follow_it():
    p = params(check_running=False, check_health=False, check_restarts=False, check_logs=False,
               health_urls=[http_check(url="http://h/old", status=301, retries=0)])
    result, fetched = run(p, FakeCli(HEALTHY), answers={"http://h/old": [(301, "")]})
    assert result["passed"] and fetched == [("http://h/old", False)]


def test_fetch_without_an_answer():
    status, why = fetch("http://127.0.0.1:%d/" % (HTTP_PORT + 1), 2, True)
    assert status is None
    assert "refused" in why.lower()

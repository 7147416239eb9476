# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator itself: it refuses and counts requests outside the OpenAPI definition, its
answers match the definition's response schemas, and it runs as a standalone command."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from ansible_run import ROOT
from netlify_emulator import Emulator, OpenApiSpec, validate_schema
from netlify_emulator.fixture_ids import ERRORED, HEADER_FIX, OTHER_SITE_DEPLOY, PUBLISHED, SITE_ID

TOKEN = "emulator-self-test-token"


@pytest.fixture(scope="module")
def spec():
    return OpenApiSpec.load()


@pytest.fixture
def emulator(spec):
    # Its own instance: these tests break the rules on purpose.
    with Emulator(tokens=[TOKEN], max_per_page=5, spec=spec) as instance:
        yield instance


def call(emulator, method, path, body=None, token=TOKEN, content_type="application/json"):
    headers = {"Authorization": "Bearer " + token} if token else {}
    if body is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(emulator.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"null")


def violations(emulator):
    return call(emulator, "GET", "/_emulator/violations")[2]


def test_the_vendored_definition_is_netlifys(spec):
    assert spec.document["info"]["title"] == "Netlify's API documentation"
    assert spec.version == "2.60.0"
    assert spec.base_path == "/api/v1"
    readme = open(os.path.join(ROOT, "tests", "netlify_emulator", "README.md"), encoding="utf-8").read()
    assert "@netlify/open-api" in readme and spec.version in readme
    for method, path in [("GET", "/sites/{site_id}"), ("GET", "/sites/{site_id}/deploys"),
                         ("GET", "/deploys/{deploy_id}"), ("POST", "/sites/{site_id}/deploys/{deploy_id}/restore"),
                         ("POST", "/deploys/{deploy_id}/lock")]:
        operation, _params = spec.find(method, path.replace("{", "").replace("}", ""))
        assert operation.template == path


@pytest.mark.parametrize("method, path, body, status, message", [
    ("GET", "/api/v1/sites/s/deploys?per_page=ten", None, 400, "'per_page' must be an integer"),
    ("GET", "/api/v1/sites/s/deploys?state=broken", None, 400, "'state' must be one of"),
    ("GET", "/api/v1/sites/s/deploys?production=yes", None, 400, "'production' must be true or false"),
    ("GET", "/api/v1/sites/s/deploys?sort=asc", None, 400, "query parameter 'sort' is not defined"),
    ("GET", "/api/v1/sites/s/deploys?page=1&page=2", None, 400, "given 2 times"),
    ("POST", "/api/v1/sites/s/deploys/d/restore", b"{}", 400, "takes no request body"),
    ("DELETE", "/api/v1/deploys/d/lock", None, 405, "DELETE is not defined"),
    ("GET", "/api/v1/rollbacks/x", None, 404, "no path in the definition"),
    ("POST", "/api/v1/sites", b"[1]", 400, "body must be object"),
    ("POST", "/api/v1/sites", b"name=x", 400, "content type"),
])
def test_requests_outside_the_definition_are_refused_and_counted(emulator, method, path, body, status, message):
    content_type = "application/x-www-form-urlencoded" if body == b"name=x" else "application/json"
    got, _headers, answer = call(emulator, method, path, body, content_type=content_type)
    assert got == status
    assert message in answer["message"]
    assert violations(emulator)["count"] == 1
    assert call(emulator, "GET", "/_emulator/state")[2]["violations"] == 1


def test_valid_requests_are_not_violations(emulator):
    assert call(emulator, "GET", "/api/v1/sites/%s/deploys?production=true&state=ready&page=2&per_page=3"
                % SITE_ID)[0] == 200
    assert call(emulator, "GET", "/api/v1/sites/%s/deploys/%s" % (SITE_ID, HEADER_FIX))[0] == 200
    assert violations(emulator)["count"] == 0


def test_answers_match_the_response_schemas(emulator, spec):
    checks = [
        ("GET", "/sites/%s" % SITE_ID),
        ("GET", "/sites/%s/deploys" % SITE_ID),
        ("GET", "/sites/%s/deploys/%s" % (SITE_ID, HEADER_FIX)),
        ("GET", "/deploys/%s" % ERRORED),
        ("GET", "/sites"),
        ("POST", "/sites/%s/deploys/%s/restore" % (SITE_ID, HEADER_FIX)),
        ("POST", "/deploys/%s/lock" % HEADER_FIX),
        ("POST", "/deploys/%s/unlock" % HEADER_FIX),
        ("GET", "/sites/no-such-site"),
    ]
    for method, path in checks:
        status, _headers, answer = call(emulator, method, "/api/v1" + path)
        operation, _params = spec.find(method, path)
        schema = operation.response_schema(status)
        assert schema, (method, path, status)
        assert validate_schema(answer, schema, "%s %s" % (method, path)) == []


def test_state_restore_lock_and_auth(emulator):
    assert call(emulator, "GET", "/api/v1/sites/%s" % SITE_ID, token="wrong")[0] == 401
    assert call(emulator, "GET", "/api/v1/sites/%s" % SITE_ID, token=None)[0] == 401
    assert call(emulator, "POST", "/api/v1/sites/%s/deploys/%s/restore" % (SITE_ID, ERRORED))[0] == 422
    assert call(emulator, "POST", "/api/v1/sites/%s/deploys/%s/restore" % (SITE_ID, OTHER_SITE_DEPLOY))[0] == 404
    status, _headers, restored = call(emulator, "POST", "/api/v1/sites/ops-demo.netlify.app/deploys/%s/restore"
                                      % HEADER_FIX)
    assert status == 201 and restored["published_at"]
    assert call(emulator, "POST", "/api/v1/deploys/%s/lock" % HEADER_FIX)[2]["locked"] is True
    site = call(emulator, "GET", "/api/v1/sites/www.ops-demo.example")[2]
    assert site["published_deploy"]["id"] == HEADER_FIX and site["published_deploy"]["locked"] is True
    with urllib.request.urlopen(site["url"], timeout=10) as page:
        assert page.headers["X-Emulator-Deploy-Id"] == HEADER_FIX
    state = call(emulator, "GET", "/_emulator/state")[2]
    assert state["sites"][SITE_ID]["published_deploy"] == HEADER_FIX
    call(emulator, "POST", "/_emulator/reset")
    assert call(emulator, "GET", "/_emulator/state")[2]["sites"][SITE_ID]["published_deploy"] == PUBLISHED


def test_faults(emulator):
    call(emulator, "POST", "/_emulator/faults", json.dumps({"faults": [
        {"method": "GET", "path": "/deploys$", "status": 429, "retry_after": 3},
        {"status": 500, "times": 2},
        {"path": "^/api/v1/sites/[^/]+$", "status": 401},
        {"path": "^/api/v1/sites/[^/]+$", "status": 404},
    ]}).encode())
    deploys = "/api/v1/sites/%s/deploys" % SITE_ID
    status, headers, _answer = call(emulator, "GET", deploys)
    assert status == 429 and headers["Retry-After"] == "3"
    assert [call(emulator, "GET", deploys)[0] for _attempt in range(3)] == [500, 500, 200]
    assert call(emulator, "GET", "/api/v1/sites/%s" % SITE_ID)[0] == 401
    assert call(emulator, "GET", "/api/v1/sites/%s" % SITE_ID)[0] == 404
    assert call(emulator, "GET", "/api/v1/sites/%s" % SITE_ID)[0] == 200
    assert call(emulator, "POST", "/_emulator/faults", json.dumps({"bogus": 1}).encode())[0] == 400


def test_standalone_command_serves_the_fixture(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("standalone-token\n")
    proc = subprocess.Popen([sys.executable, "-m", "tests.netlify_emulator", "--port", "0",
                             "--token-file", str(token_file)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = json.loads(proc.stdout.readline())
        assert banner["url"].startswith("http://127.0.0.1:") and banner["spec_version"] == "2.60.0"
        request = urllib.request.Request(banner["api_url"] + "/sites/ops-demo.netlify.app",
                                         headers={"Authorization": "Bearer standalone-token"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["published_deploy"]["id"] == PUBLISHED
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()

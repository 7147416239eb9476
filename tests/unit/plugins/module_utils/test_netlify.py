# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Netlify client: headers, Link pagination, retry timing (fake clock and sleep), errors."""
import email.message
import email.utils
import io
import json
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError, URLError

import pytest
import yaml

from ansible_collections.ops.rollback.plugins.doc_fragments.netlify import ModuleDocFragment
from ansible_collections.ops.rollback.plugins.module_utils import _netlify
from ansible_collections.ops.rollback.plugins.module_utils._netlify import (
    NetlifyClient,
    NetlifyError,
    backoff_delay,
    netlify_argument_spec,
    parse_link_header,
    rate_limit_delay,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
TOKEN = "nfp_unit_SECRET_token_1234567890"
API = "https://api.example.test/api/v1"
NOW = 1_700_000_000.0


def headers(**values):
    message = email.message.Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


class FakeResponse:
    def __init__(self, status, body, hdrs):
        self.status = status
        self._body = body
        self.headers = hdrs

    def read(self):
        return self._body

    def getcode(self):
        return self.status


class FakeOpener:
    """Answers requests from a script: (status, body, headers) tuples or exceptions."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []

    def open(self, method, url, data=None, headers=None, timeout=None, **kwargs):
        self.calls.append({"method": method, "url": url, "data": data, "headers": dict(headers or {}),
                           "timeout": timeout, "kwargs": kwargs})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        status, body, hdrs = step
        raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
        if status >= 400:
            raise HTTPError(url, status, "error", hdrs or headers_(), io.BytesIO(raw))
        return FakeResponse(status, raw, hdrs or headers_())


def headers_():
    return email.message.Message()


class Clock:
    def __init__(self):
        self.now = NOW
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def client(opener, clock=None, rand=0.5, **kwargs):
    clock = clock or Clock()
    kwargs.setdefault("retry_delay", 1.0)
    kwargs.setdefault("retry_max_delay", 60.0)
    return NetlifyClient(TOKEN, api_url=API, opener=opener, sleep=clock.sleep, clock=clock.time,
                         rand=lambda: rand, **kwargs), clock


# -- identity and options ------------------------------------------------------------------------

def test_user_agent_names_the_collection_and_the_galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    assert _netlify.COLLECTION_VERSION == galaxy["version"]
    assert _netlify.USER_AGENT == "ansible-collection-%s.%s/%s" % (galaxy["namespace"], galaxy["name"],
                                                                   galaxy["version"])


def test_argument_spec_matches_the_doc_fragment():
    docs = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = netlify_argument_spec()
    assert set(docs) == set(spec)
    for name, option in spec.items():
        assert docs[name]["type"] == option["type"], name
        assert docs[name].get("default") == option.get("default"), name
        assert docs[name].get("required", False) == option.get("required", False), name
    assert spec["auth_token"]["no_log"] is True
    assert spec["auth_token"]["fallback"][1] == ["NETLIFY_AUTH_TOKEN"]


def test_requests_carry_token_and_user_agent_over_real_http():
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update(self.headers)
            seen["path"] = self.path
            body = b'{"id": "s1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = NetlifyClient(TOKEN, api_url="http://127.0.0.1:%d/api/v1/" % server.server_address[1], timeout=5)
        assert api.get_site("my site/x") == {"id": "s1"}
    finally:
        server.shutdown()
        server.server_close()
    assert seen["Authorization"] == "Bearer " + TOKEN
    assert seen["User-Agent"] == _netlify.USER_AGENT
    assert seen["path"] == "/api/v1/sites/my%20site%2Fx"
    assert api.calls == 1


def test_empty_token_is_refused_before_any_request():
    with pytest.raises(NetlifyError, match="NETLIFY_AUTH_TOKEN"):
        NetlifyClient("", api_url=API, opener=FakeOpener())


def test_api_url_must_be_http():
    with pytest.raises(NetlifyError, match="api_url"):
        NetlifyClient(TOKEN, api_url="ftp://x", opener=FakeOpener())


# -- pure helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ('<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last"',
     {"next": "https://a/x?page=2", "last": "https://a/x?page=9"}),
    ("<https://a/x?page=2>; rel=next", {"next": "https://a/x?page=2"}),
    ('<https://a/x?p=1,2>; title="a,b"; rel="prev first"', {"prev": "https://a/x?p=1,2", "first": "https://a/x?p=1,2"}),
    ('<https://a/x?page=3>; REL="Next"', {"next": "https://a/x?page=3"}),
    ("", {}),
    (None, {}),
    ("garbage", {}),
])
def test_parse_link_header(value, expected):
    assert parse_link_header(value) == expected


def test_rate_limit_delay_prefers_retry_after_seconds():
    assert rate_limit_delay(headers(Retry_After="7", X_RateLimit_Reset=str(int(NOW) + 50)), NOW) == 7.0


def test_rate_limit_delay_reads_an_http_date():
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert rate_limit_delay(headers(Retry_After=date), NOW) == pytest.approx(30, abs=1)


def test_rate_limit_delay_reads_the_reset_epoch():
    assert rate_limit_delay(headers(X_RateLimit_Reset=str(int(NOW) + 12)), NOW) == 12.0
    assert rate_limit_delay(headers(X_RateLimit_Reset=str(int(NOW) - 5)), NOW) == 0.0


def test_rate_limit_delay_without_usable_headers():
    assert rate_limit_delay(headers(), NOW) is None
    assert rate_limit_delay(headers(Retry_After="soon"), NOW) is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    assert backoff_delay(0, 1.0, 60.0, lambda: 0.0) == 0.5
    assert backoff_delay(0, 1.0, 60.0, lambda: 1.0) == 1.0
    assert backoff_delay(3, 1.0, 60.0, lambda: 0.5) == 6.0
    assert backoff_delay(10, 1.0, 60.0, lambda: 1.0) == 60.0


# -- retries -------------------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says():
    opener = FakeOpener((429, {"message": "Rate limit"}, headers(Retry_After="7")), (200, {"id": "s"}, None))
    api, clock = client(opener)
    assert api.get_site("s") == {"id": "s"}
    assert clock.sleeps == [7.0]
    assert api.calls == 2
    assert api.retries[0]["problem"].startswith("HTTP 429")


def test_429_waits_until_the_rate_limit_resets():
    opener = FakeOpener((429, {}, headers(X_RateLimit_Reset=str(int(NOW) + 12))), (200, {}, None))
    api, clock = client(opener)
    api.get_site("s")
    assert clock.sleeps == [12.0]


def test_429_without_headers_backs_off():
    opener = FakeOpener((429, {}, None), (200, {}, None))
    api, clock = client(opener, rand=0.0, retry_delay=2.0)
    api.get_site("s")
    assert clock.sleeps == [1.0]


def test_5xx_backs_off_exponentially_with_jitter():
    opener = FakeOpener((500, {}, None), (502, {}, None), (503, {}, None), (200, {"ok": True}, None))
    api, clock = client(opener, rand=0.5)
    assert api.get_site("s") == {"ok": True}
    assert clock.sleeps == [0.75, 1.5, 3.0]
    assert api.calls == 4


def test_connection_errors_and_timeouts_are_retried():
    opener = FakeOpener(URLError(ConnectionRefusedError(111, "refused")), socket.timeout("timed out"),
                        (200, {}, None))
    api, clock = client(opener, rand=1.0, timeout=2.5)
    api.get_site("s")
    assert clock.sleeps == [1.0, 2.0]
    assert opener.calls[0]["timeout"] == 2.5
    assert "refused" in api.retries[0]["problem"]
    assert "2.5 s" in api.retries[1]["problem"]


def test_retries_are_bounded():
    opener = FakeOpener(*[(500, {"message": "boom"}, None)] * 3)
    api, clock = client(opener, max_retries=2)
    with pytest.raises(NetlifyError, match=r"HTTP 500 boom \(gave up after 3 attempts\)") as info:
        api.get_site("s")
    assert api.calls == 3
    assert len(clock.sleeps) == 2
    assert info.value.status == 500


def test_a_rate_limit_longer_than_retry_max_delay_fails_at_once():
    opener = FakeOpener((429, {}, headers(Retry_After="3600")))
    api, clock = client(opener, retry_max_delay=30)
    with pytest.raises(NetlifyError, match="asks to wait 3600 s"):
        api.get_site("s")
    assert clock.sleeps == []


@pytest.mark.parametrize("status, hint", [(401, "NETLIFY_AUTH_TOKEN"), (404, "not found"), (422, "")])
def test_client_errors_are_not_retried_and_never_show_the_token(status, hint):
    # Even when the API echoes the token back, it is masked.
    opener = FakeOpener((status, {"code": status, "message": "bad token " + TOKEN}, None))
    api, clock = client(opener)
    with pytest.raises(NetlifyError) as info:
        api.restore_deploy("site-1", "dep-1")
    message = str(info.value)
    assert message.startswith("POST /sites/site-1/deploys/dep-1/restore: HTTP %d" % status)
    assert hint in message
    assert TOKEN not in message and TOKEN not in info.value.api_message
    assert clock.sleeps == [] and api.calls == 1


def test_certificate_errors_are_not_retried():
    opener = FakeOpener(URLError(ssl.SSLCertVerificationError("certificate verify failed")))
    api, clock = client(opener)
    with pytest.raises(NetlifyError, match="TLS certificate check failed"):
        api.get_site("s")
    assert api.calls == 1 and clock.sleeps == []


def test_post_sends_no_body_and_keeps_the_token_off_redirects():
    opener = FakeOpener((201, {"id": "d"}, None), (200, {"id": "d", "locked": True}, None))
    api, _clock = client(opener)
    api.restore_deploy("s", "d")
    api.lock_deploy("d")
    assert [(c["method"], c["url"], c["data"]) for c in opener.calls] == [
        ("POST", API + "/sites/s/deploys/d/restore", None), ("POST", API + "/deploys/d/lock", None)]
    assert opener.calls[0]["headers"]["Authorization"] == "Bearer " + TOKEN
    assert opener.calls[0]["kwargs"]["unredirected_headers"] == ["Authorization"]


def test_non_json_answers_fail_clearly():
    opener = FakeOpener((200, b"<html>proxy login</html>", None))
    api, _clock = client(opener)
    with pytest.raises(NetlifyError, match="not JSON"):
        api.get_site("s")


# -- pagination ----------------------------------------------------------------------------------

def page(items, next_url=None):
    link = headers(Link='<%s>; rel="next", <%s/last>; rel="last"' % (next_url, API)) if next_url else headers()
    return (200, items, link)


def test_pagination_follows_link_next_until_the_end():
    opener = FakeOpener(page([1, 2], API + "/sites/s/deploys?page=2&per_page=2"),
                        page([3, 4], "/api/v1/sites/s/deploys?page=3&per_page=2"),
                        page([5]))
    api, _clock = client(opener)
    assert list(api.iter_site_deploys("s", production=True)) == [1, 2, 3, 4, 5]
    assert opener.calls[0]["url"] == API + "/sites/s/deploys?production=true&per_page=100"
    assert opener.calls[2]["url"] == "https://api.example.test/api/v1/sites/s/deploys?page=3&per_page=2"
    assert api.calls == 3


def test_pagination_stops_at_the_limit_without_fetching_more():
    opener = FakeOpener(page([1, 2, 3], API + "/sites/s/deploys?page=2"), page([4, 5, 6]))
    api, _clock = client(opener)
    assert list(api.iter_site_deploys("s", state="ready", limit=2)) == [1, 2]
    assert opener.calls[0]["url"] == API + "/sites/s/deploys?state=ready&per_page=2"
    assert api.calls == 1


def test_pagination_is_lazy():
    opener = FakeOpener(page([1, 2], API + "/sites/s/deploys?page=2"), page([3]))
    api, _clock = client(opener)
    deploys = api.iter_site_deploys("s")
    assert next(deploys) == 1
    assert api.calls == 1


def test_pagination_never_sends_the_token_to_another_host():
    opener = FakeOpener(page([1], "https://evil.example/api/v1/sites/s/deploys?page=2"))
    api, _clock = client(opener)
    with pytest.raises(NetlifyError, match="another host"):
        list(api.iter_site_deploys("s"))
    assert api.calls == 1


def test_pagination_detects_a_loop():
    loop = API + "/sites/s/deploys?page=2"
    opener = FakeOpener(page([1], loop), page([2], loop))
    api, _clock = client(opener)
    with pytest.raises(NetlifyError, match="does not end"):
        list(api.iter_site_deploys("s"))


def test_pagination_retries_a_page():
    opener = FakeOpener(page([1], API + "/sites/s/deploys?page=2"), (503, {}, None), page([2]))
    api, clock = client(opener)
    assert list(api.iter_site_deploys("s")) == [1, 2]
    assert len(clock.sleeps) == 1

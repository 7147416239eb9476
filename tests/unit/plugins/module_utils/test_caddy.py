"""Unit tests of plugins/module_utils/_caddy.py: every pure function, and the admin client
against a fake opener (no network)."""
import copy
import io
import json
import socket
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _caddy
from ansible_collections.ops.rollback.plugins.module_utils._caddy import (
    CaddyAdmin, CaddyConflictError, CaddyError, CaddyHTTPError, CaddyUnreachableError, SelectionError,
    build_upstreams, caddy_admin_argument_spec, compute_etag, etag_for, fnv1a_32, get_at_path,
    normalize_config_path, parse_etag, same_upstream_set, select_handler, split_config_path,
    upstream_dials, validate_upstreams, walk_handlers,
)


# -- ETag -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data, value", [
    (b"", 0x811C9DC5),          # the offset basis
    (b"a", 0xE40C292C),         # published FNV-1a 32-bit test vectors
    (b"foobar", 0xBF9CF968),
])
def test_fnv1a_32_vectors(data, value):
    assert fnv1a_32(data) == value


# Recorded from Debian's caddy 2.6.2 (curl --raw): body bytes and the Etag *trailer* it sent.
RECORDED_26 = [
    ("/config/apps/http/servers/srv1/routes/0/handle/0/upstreams",
     b'[{"dial":"127.0.0.1:9201"}]\n',
     '"/config/apps/http/servers/srv1/routes/0/handle/0/upstreams 4c1e149a"'),
    ("/config/apps/http/servers/srv1/routes/0/handle/0",
     b'{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:9201"}]}\n',
     '"/config/apps/http/servers/srv1/routes/0/handle/0 d07c12a7"'),
]


@pytest.mark.parametrize("path, body, trailer", RECORDED_26)
def test_compute_etag_matches_what_caddy_2_6_sent(path, body, trailer):
    assert compute_etag(path, body) == trailer


def test_compute_etag_hashes_exact_bytes_and_pads_to_8_digits():
    body = b'{"a":1}\n'
    assert compute_etag("/config/", body) != compute_etag("/config/", body.rstrip(b"\n"))
    assert compute_etag("/config/", b"") == '"/config/ 811c9dc5"'
    small = next(bytes([i]) for i in range(256) if fnv1a_32(bytes([i])) < 0x10000000)
    assert len(parse_etag(compute_etag("/config/", small))[1]) == 8


def test_etag_for_prefers_the_header_and_treats_it_as_opaque():
    header = '"/config/ 26a0e3ce9faeec43"'          # Caddy 2.11: xxhash, 16 hex digits
    assert etag_for("/config/", {"Etag": header}, b"{}\n") == (header, "header")
    assert etag_for("/config/", {"ETag": header}, b"{}\n") == (header, "header")


def test_etag_for_computes_when_the_header_is_missing():
    path, body, trailer = RECORDED_26[0]
    assert etag_for(path, {}, body) == (trailer, "computed")
    assert etag_for(path, None, body) == (trailer, "computed")


@pytest.mark.parametrize("value, parsed", [
    ('"/config/ 52bff3d6"', ("/config/", "52bff3d6")),
    (' "/config/apps/http 26a0e3ce9faeec43" ', ("/config/apps/http", "26a0e3ce9faeec43")),
])
def test_parse_etag(value, parsed):
    assert parse_etag(value) == parsed


@pytest.mark.parametrize("value", [None, "", '"', "/config/ 52bff3d6", '"/config/"', '"/config/ a b"'])
def test_parse_etag_rejects_what_caddy_rejects(value):
    with pytest.raises(ValueError):
        parse_etag(value)


# -- upstreams ------------------------------------------------------------------------------
def test_validate_upstreams_accepts_host_port():
    assert validate_upstreams([" 127.0.0.1:8080", "app-blue:80", "[::1]:443", "a.b_c:65535"]) == [
        "127.0.0.1:8080", "app-blue:80", "[::1]:443", "a.b_c:65535"]


@pytest.mark.parametrize("upstreams, needle", [
    ([], "at least one"),
    (None, "at least one"),
    (["127.0.0.1"], "'127.0.0.1' is not a dial address"),
    (["127.0.0.1:0"], "'127.0.0.1:0'"),
    (["127.0.0.1:65536"], "'127.0.0.1:65536'"),
    (["http://127.0.0.1:80"], "'http://127.0.0.1:80'"),
    (["::1:80"], "'::1:80'"),
    (["a:80", "a:80"], "'a:80' is listed twice"),
    ([""], "''"),
])
def test_validate_upstreams_names_the_bad_value(upstreams, needle):
    with pytest.raises(ValueError) as err:
        validate_upstreams(upstreams)
    assert needle in str(err.value)


def test_upstream_dials():
    handler = {"handler": "reverse_proxy", "upstreams": [{"dial": "a:1"}, {"dial": "b:2", "max_requests": 5}]}
    assert upstream_dials(handler) == ["a:1", "b:2"]
    assert upstream_dials({"handler": "reverse_proxy"}) == []


@pytest.mark.parametrize("current, desired, same", [
    (["a:1", "b:2"], ["b:2", "a:1"], True),
    (["a:1"], ["a:1"], True),
    (["a:1", "a:1"], ["a:1"], True),
    (["a:1"], ["a:1", "b:2"], False),
    (["a:1", "b:2"], ["a:1"], False),
    ([], ["a:1"], False),
])
def test_same_upstream_set(current, desired, same):
    assert same_upstream_set(current, desired) is same


def test_build_upstreams_keeps_objects_of_upstreams_that_stay():
    existing = [{"dial": "a:1", "max_requests": 10}, {"dial": "b:2"}]
    assert build_upstreams(existing, ["c:3", "a:1"]) == [{"dial": "c:3"}, {"dial": "a:1", "max_requests": 10}]
    assert build_upstreams(None, ["a:1"]) == [{"dial": "a:1"}]


# -- finding handlers -------------------------------------------------------------------------
def proxy(dial, **extra):
    handler = {"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}
    handler.update(extra)
    return handler


def subroute(*routes):
    return {"handler": "subroute", "routes": list(routes)}


def site(host, *handlers):
    """A site as `caddy adapt` writes it: host matcher, everything wrapped in a subroute."""
    return {"match": [{"host": [host]}], "handle": [subroute({"handle": list(handlers)})], "terminal": True}


def make_config():
    """The shape of `caddy adapt` output for a multi-site Caddyfile."""
    return {"apps": {"http": {"servers": {
        "srv0": {"listen": [":8443"], "routes": [
            site("b.test", proxy("127.0.0.1:9002")),
        ]},
        "srv1": {"listen": [":80"], "routes": [
            site("app.test", proxy("127.0.0.1:9001", **{"@id": "app"})),
            site("b.test", proxy("127.0.0.1:9003")),
            {"match": [{"host": ["api.test", "API2.test"]}], "handle": [subroute(
                {"group": "g1", "match": [{"path": ["/v1/*"]}],
                 "handle": [subroute({"handle": [proxy("127.0.0.1:9101")]})]},
                {"group": "g1", "handle": [subroute({"handle": [
                    {"@id": "static", "handler": "static_response", "body": "hi"}]})]},
            )], "terminal": True},
            site("shop.test", subroute({"match": [{"path": ["/a/*"]}], "handle": [proxy("127.0.0.1:9201")]},
                                       {"match": [{"path": ["/b/*"]}], "handle": [proxy("127.0.0.1:9202")]})),
            {"handle": [proxy("127.0.0.1:9999")]},
        ], "errors": {"routes": [
            site("err.test", proxy("127.0.0.1:9301")),
        ]}},
    }}}}


SRV1 = "/config/apps/http/servers/srv1/routes"
APP_PATH = SRV1 + "/0/handle/0/routes/0/handle/0"
API_PATH = SRV1 + "/2/handle/0/routes/0/handle/0/routes/0/handle/0"
STATIC_PATH = SRV1 + "/2/handle/0/routes/1/handle/0/routes/0/handle/0"
NOHOST_PATH = SRV1 + "/4/handle/0"


def test_walk_handlers_finds_everything_with_paths_and_hosts():
    found = {m.path: m for m in walk_handlers(make_config())}
    assert found[APP_PATH].kind == "reverse_proxy" and found[APP_PATH].hosts == ["app.test"]
    assert found[API_PATH].hosts == ["api.test", "api2.test"] and found[API_PATH].server == "srv1"
    assert found[STATIC_PATH].kind == "static_response"
    assert found[NOHOST_PATH].host_sets == []
    assert found["/config/apps/http/servers/srv1/errors/routes/0/handle/0/routes/0/handle/0"].hosts == ["err.test"]
    assert found[SRV1 + "/0/handle/0"].kind == "subroute"
    assert len([m for m in found.values() if m.kind == "reverse_proxy"]) == 8


def test_walk_handlers_descends_into_handle_response_routes():
    inner = proxy("127.0.0.1:2")
    outer = proxy("127.0.0.1:1", handle_response=[{"match": {"status_code": [404]},
                                                   "routes": [{"handle": [inner]}]}])
    config = {"apps": {"http": {"servers": {"s": {"routes": [{"handle": [outer]}]}}}}}
    paths = [m.path for m in walk_handlers(config)]
    assert paths == ["/config/apps/http/servers/s/routes/0/handle/0",
                     "/config/apps/http/servers/s/routes/0/handle/0/handle_response/0/routes/0/handle/0"]


@pytest.mark.parametrize("config", [None, {}, {"apps": {}}, {"apps": {"http": {}}}])
def test_walk_handlers_on_empty_configs(config):
    assert walk_handlers(config) == []


def test_serves_host_needs_every_enclosing_host_matcher():
    config = {"apps": {"http": {"servers": {"s": {"routes": [
        {"match": [{"host": ["a.test", "b.test"]}], "handle": [subroute(
            {"match": [{"host": ["b.test"]}], "handle": [proxy("x:1")]})]}]}}}}}
    match = [m for m in walk_handlers(config) if m.kind == "reverse_proxy"][0]
    assert match.serves_host("B.test") and not match.serves_host("a.test")


@pytest.mark.parametrize("selector, path", [
    (dict(handler_id="app"), APP_PATH),
    (dict(host="app.test"), APP_PATH),
    (dict(host="APP.TEST"), APP_PATH),
    (dict(host="api2.test"), API_PATH),
    (dict(host="b.test", server="srv0"), "/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0"),
    (dict(host="b.test", server="srv1"), SRV1 + "/1/handle/0/routes/0/handle/0"),
    (dict(config_path=API_PATH), API_PATH),
    (dict(config_path=API_PATH + "/"), API_PATH),
    (dict(config_path=NOHOST_PATH), NOHOST_PATH),
])
def test_select_handler(selector, path):
    match = select_handler(make_config(), **selector)
    assert match.path == path and match.kind == "reverse_proxy"


@pytest.mark.parametrize("selector, needles", [
    (dict(host="shop.test"), ["host shop.test matches 2 reverse_proxy handlers",
                              SRV1 + "/3/handle/0/routes/0/handle/0/routes/0/handle/0",
                              SRV1 + "/3/handle/0/routes/0/handle/0/routes/1/handle/0", "127.0.0.1:9202"]),
    (dict(host="b.test"), ["host b.test matches 2", "server srv0", "server srv1"]),
    (dict(host="nope.test"), ["no reverse_proxy handler serves host nope.test",
                              "app.test (srv1)", "b.test (srv0)"]),
    (dict(host="app.test", server="srv0"), ["no reverse_proxy handler serves host app.test in server srv0"]),
    (dict(handler_id="nope"), ["no handler has @id nope; handler @ids found: app, static"]),
    (dict(handler_id="static"), ["@id static is a static_response handler at " + STATIC_PATH,
                                 "not reverse_proxy"]),
    (dict(config_path=STATIC_PATH), ["config_path %s is a static_response handler" % STATIC_PATH]),
    (dict(config_path=SRV1 + "/0/handle/0"), ["is a subroute handler"]),
    (dict(config_path=SRV1 + "/0"), ["is not an HTTP handler (it holds a dict)", APP_PATH]),
    (dict(config_path=SRV1 + "/42/handle/0"), ["does not exist in Caddy's config (no %s/42)" % SRV1]),
    (dict(config_path="apps/http"), ["does not start with /config/"]),
    (dict(), ["exactly one of handler_id, host, config_path is needed, got: none"]),
    (dict(host="a", handler_id="b"), ["got: handler_id, host"]),
])
def test_select_handler_errors_list_what_was_found(selector, needles):
    with pytest.raises(SelectionError) as err:
        select_handler(make_config(), **selector)
    for needle in needles:
        assert needle in str(err.value)


def test_select_handler_refuses_duplicate_ids_null_config_and_dynamic_upstreams():
    config = make_config()
    config["apps"]["http"]["servers"]["srv0"]["routes"][0]["handle"][0]["routes"][0]["handle"][0]["@id"] = "app"
    with pytest.raises(SelectionError, match="2 handlers have @id app"):
        select_handler(config, handler_id="app")
    with pytest.raises(SelectionError, match="no config loaded"):
        select_handler(None, host="a")
    config = {"apps": {"http": {"servers": {"s": {"routes": [{"handle": [
        {"@id": "dyn", "handler": "reverse_proxy", "dynamic_upstreams": {"source": "a"}}]}]}}}}}
    with pytest.raises(SelectionError, match="dynamic_upstreams"):
        select_handler(config, handler_id="dyn")


def test_numeric_ids_match_their_string():
    config = {"apps": {"http": {"servers": {"s": {"routes": [{"handle": [dict(proxy("a:1"), **{"@id": 7})]}]}}}}}
    assert select_handler(config, handler_id="7").handler_id == 7


def test_config_paths():
    assert split_config_path("/config/apps/http/") == ["apps", "http"]
    assert normalize_config_path("/config//apps/http/") == "/config/apps/http"
    config = make_config()
    assert get_at_path(config, APP_PATH)["@id"] == "app"
    assert get_at_path(config, "/config/") is config
    with pytest.raises(KeyError):
        get_at_path(config, SRV1 + "/0/handle/x")
    with pytest.raises(ValueError):
        split_config_path("/id/app")


def test_selection_does_not_modify_the_config():
    config = make_config()
    snapshot = copy.deepcopy(config)
    select_handler(config, host="app.test")
    assert config == snapshot


def test_argument_spec_matches_doc_fragment_defaults():
    spec = caddy_admin_argument_spec()
    assert spec == {"admin_url": {"type": "str", "default": "http://localhost:2019"},
                    "timeout": {"type": "float", "default": 10.0},
                    "retries": {"type": "int", "default": 3}}


# -- the client -------------------------------------------------------------------------------
class FakeResponse:
    def __init__(self, body, headers=None, status=200):
        self._body = body
        self.headers = headers or {}
        self.status = status

    def read(self):
        return self._body

    def getcode(self):
        return self.status


class Opener:
    """Records each call; answers with `answer(call)`."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def __call__(self, url, **kwargs):
        call = dict(kwargs, url=url)
        self.calls.append(call)
        return self.answer(call)


def http_error(code, body):
    return HTTPError("http://x/", code, "status %d" % code, {}, io.BytesIO(body))


def test_client_tcp_sends_origin_and_computes_missing_etag():
    body = b'{"apps":{}}\n'
    opener = Opener(lambda call: FakeResponse(body))
    client = CaddyAdmin("http://127.0.0.1:2019/", timeout=3, opener=opener)
    config, raw, etag, source = client.get_config()
    assert (config, raw, etag, source) == ({"apps": {}}, body, compute_etag("/config/", body), "computed")
    call = opener.calls[0]
    assert call["url"] == "http://127.0.0.1:2019/config/"
    assert call["method"] == "GET" and call["timeout"] == 3 and call["unix_socket"] is None
    assert call["headers"] == {"Origin": "http://127.0.0.1:2019"}


def test_client_unix_socket_sends_an_empty_host():
    opener = Opener(lambda call: FakeResponse(b"null\n", {"Etag": '"/config/ 1"'}))
    client = CaddyAdmin("unix:///run/caddy/admin.sock", opener=opener)
    assert client.get_config()[2:] == ('"/config/ 1"', "header")
    call = opener.calls[0]
    assert call["unix_socket"] == "/run/caddy/admin.sock" and call["headers"] == {"Host": ""}
    assert call["url"] == "http://127.0.0.1/config/" and call["use_proxy"] is False


def test_client_write_sends_json_and_if_match():
    opener = Opener(lambda call: FakeResponse(b""))
    client = CaddyAdmin("http://localhost:2019", opener=opener)
    client.write_json("PATCH", "/config/apps/x/upstreams", [{"dial": "a:1"}], '"/config/ 1"', "Setting")
    call = opener.calls[0]
    assert call["method"] == "PATCH" and json.loads(call["data"]) == [{"dial": "a:1"}]
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["headers"]["If-Match"] == '"/config/ 1"'


@pytest.mark.parametrize("url", ["localhost:2019", "ftp://x", "unix://", "http://"])
def test_client_rejects_bad_admin_urls(url):
    with pytest.raises(CaddyError, match="admin_url"):
        CaddyAdmin(url)


@pytest.mark.parametrize("code, body, cls, needles", [
    (412, b'{"error":"If-Match header did not match current config hash"}\n', CaddyConflictError,
     ["Doing it failed: HTTP 412 If-Match header did not match current config hash from http://127.0.0.1:1",
      "changed since it was read"]),
    (403, b'{"error":"host not allowed: 127.0.0.1:1"}\n', CaddyHTTPError,
     ["HTTP 403 host not allowed: 127.0.0.1:1", "use that address in admin_url"]),
    (400, b'{"error":"unacceptable content-type: text/plain; \'application/json\' required"}\n', CaddyHTTPError,
     ["HTTP 400 unacceptable content-type", "Content-Type: application/json"]),
    (500, b"plain text", CaddyHTTPError, ["HTTP 500 plain text"]),
])
def test_client_http_errors(code, body, cls, needles):
    def answer(call):
        raise http_error(code, body)
    client = CaddyAdmin("http://127.0.0.1:1", opener=Opener(answer))
    with pytest.raises(cls) as err:
        client.request("PATCH", "/config/x", "Doing it")
    assert err.value.status == code
    for needle in needles:
        assert needle in str(err.value)


@pytest.mark.parametrize("exc", [URLError(ConnectionRefusedError(111, "Connection refused")),
                                 URLError(OSError("Invalid Socket File (/x.sock): No such file")),
                                 ConnectionResetError(104, "reset"),
                                 _caddy.UrlsConnectionError("proxy failed")])
def test_client_unreachable(exc):
    def answer(call):
        raise exc
    client = CaddyAdmin("http://127.0.0.1:1", opener=Opener(answer))
    with pytest.raises(CaddyUnreachableError, match="Reading failed: Caddy admin API at http://127.0.0.1:1 is unreachable"):
        client.request("GET", "/config/", "Reading")


def test_client_non_json_answer():
    client = CaddyAdmin("http://127.0.0.1:1", opener=Opener(lambda call: FakeResponse(b"<html>")))
    with pytest.raises(CaddyError, match="is not JSON"):
        client.get_config()


def test_upstream_status():
    answer = b'[{"address":"127.0.0.1:1","num_requests":0,"fails":0}]\n'
    opener = Opener(lambda call: FakeResponse(answer))
    assert CaddyAdmin(opener=opener).upstream_status() == [{"address": "127.0.0.1:1", "num_requests": 0, "fails": 0}]
    assert opener.calls[0]["url"] == "http://localhost:2019/reverse_proxy/upstreams"


@pytest.mark.parametrize("method, exc, needles", [
    ("GET", socket.timeout("timed out"), ["Caddy admin API at http://127.0.0.1:1 did not answer within 3.0 s"]),
    ("PATCH", TimeoutError(), ["did not answer within 3.0 s; the change may or may not have been applied"]),
    ("PATCH", _caddy.HTTPException("gone"), ["closed the connection without a complete answer (HTTPException('gone'))",
                                             "may or may not have been applied"]),
    ("GET", URLError(socket.timeout("timed out")), ["is unreachable: no connection within 3.0 s"]),
])
def test_client_timeouts_say_whether_a_write_may_have_happened(method, exc, needles):
    def answer(call):
        raise exc
    client = CaddyAdmin("http://127.0.0.1:1", timeout=3.0, opener=Opener(answer))
    with pytest.raises(CaddyUnreachableError) as err:
        client.request(method, "/config/x", "Doing it")
    for needle in needles:
        assert needle in str(err.value)
    assert ("may or may not" in str(err.value)) is (method != "GET")


@pytest.mark.parametrize("exc", [URLError(ConnectionRefusedError(111, "Connection refused")),
                                 ConnectionResetError(104, "reset"),
                                 _caddy.RemoteDisconnected("closed")])
def test_client_get_is_retried_while_caddy_swaps_its_admin_listener(monkeypatch, exc):
    monkeypatch.setattr(_caddy.time, "sleep", lambda seconds: None)
    failures = [exc, exc]

    def answer(call):
        if failures:
            raise failures.pop()
        return FakeResponse(b"{}")
    opener = Opener(answer)
    assert CaddyAdmin("http://127.0.0.1:1", opener=opener).get_config()[0] == {}
    assert len(opener.calls) == 3


def test_client_get_gives_up_and_a_write_is_never_retried(monkeypatch):
    monkeypatch.setattr(_caddy.time, "sleep", lambda seconds: None)

    def answer(call):
        raise ConnectionResetError(104, "reset")
    opener = Opener(answer)
    with pytest.raises(CaddyUnreachableError):
        CaddyAdmin("http://127.0.0.1:1", opener=opener).request("GET", "/config/", "Reading")
    assert len(opener.calls) == _caddy.GET_CONNECT_ATTEMPTS
    opener.calls.clear()
    with pytest.raises(CaddyUnreachableError):
        CaddyAdmin("http://127.0.0.1:1", opener=opener).request("PATCH", "/config/x", "Writing", data=b"[]")
    assert len(opener.calls) == 1


def test_client_timeout_is_not_retried(monkeypatch):
    monkeypatch.setattr(_caddy.time, "sleep", lambda seconds: None)

    def answer(call):
        raise socket.timeout("timed out")
    opener = Opener(answer)
    with pytest.raises(CaddyUnreachableError):
        CaddyAdmin("http://127.0.0.1:1", opener=opener).request("GET", "/config/", "Reading")
    assert len(opener.calls) == 1

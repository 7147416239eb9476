"""Unit tests of the caddy_upstream module against a fake Caddy admin API.

FakeCaddy answers open_url calls the way Caddy does: GET returns compact JSON plus a newline,
writes need Content-Type: application/json, and If-Match is checked against the whole
config's hash, either with an ETag header (mode "header", like Caddy 2.8+) or with none
(mode "trailer", like Caddy 2.6, whose ETag the client must compute).
"""
import copy
import hashlib
import io
import json
import os
from urllib.error import HTTPError, URLError

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.module_utils import _caddy
from ansible_collections.ops.rollback.plugins.modules import caddy_upstream

APP = "/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0"
STATIC = "/config/apps/http/servers/srv0/routes/1/handle/0/routes/0/handle/0"


def base_config():
    return {"apps": {"http": {"servers": {"srv0": {"listen": [":80"], "routes": [
        {"match": [{"host": ["app.test"]}], "handle": [{"handler": "subroute", "routes": [{"handle": [
            {"@id": "app", "handler": "reverse_proxy", "load_balancing": {"selection_policy": {"policy": "first"}},
             "upstreams": [{"dial": "127.0.0.1:8081", "max_requests": 10}, {"dial": "127.0.0.1:8082"}]}]}]}],
         "terminal": True},
        {"match": [{"host": ["static.test"]}], "handle": [{"handler": "subroute", "routes": [{"handle": [
            {"@id": "static", "handler": "static_response", "body": "hi"}]}]}], "terminal": True},
        {"handle": [{"@id": "bare", "handler": "reverse_proxy"}]},
    ]}}}}}


class FakeResponse:
    def __init__(self, body, headers):
        self._body = body
        self.headers = headers
        self.status = 200

    def read(self):
        return self._body

    def getcode(self):
        return self.status


class FakeCaddy:
    def __init__(self, mode="header", config=None):
        self.mode = mode
        self.config = base_config() if config is None else config
        self.requests = []
        self.before_write = []     # callables run before a write is checked (concurrent clients)
        self.fail_with = None      # (code, body) for every request
        self.unreachable = False
        self.running_extra = []
        self.hide_from_status = set()
        self.drop_writes = False   # acknowledge writes without applying them

    # what Caddy would send
    @staticmethod
    def encode(value):
        return (json.dumps(value, separators=(",", ":"), sort_keys=True) + "\n").encode()

    def etag(self, path, body):
        if self.mode == "header":
            return '"%s %s"' % (path, hashlib.sha256(body).hexdigest()[:16])
        value = 0x811C9DC5       # Go's hash/fnv New32a, written out here independently
        for byte in body:
            value = ((value ^ byte) * 0x01000193) % 2 ** 32
        return '"%s %08x"' % (path, value)

    def node(self, path):
        return _caddy.get_at_path(self.config, path)

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        path = url.split("://", 1)[1]
        path = path[path.index("/"):]
        self.requests.append((method, path, dict(headers or {}), data, kwargs))
        if self.unreachable:
            raise URLError(ConnectionRefusedError(111, "Connection refused"))
        if self.fail_with:
            raise self.error(*self.fail_with)
        if method == "GET":
            if path == "/reverse_proxy/upstreams":
                dials = [d for m in _caddy.walk_handlers(self.config) if m.kind == "reverse_proxy"
                         for d in _caddy.upstream_dials(m.handler)] + self.running_extra
                return FakeResponse(self.encode([{"address": d, "num_requests": 0, "fails": 0}
                                                 for d in dials if d not in self.hide_from_status]), {})
            body = self.encode(self.node(path))
            hdrs = {"Etag": self.etag(path, body)} if self.mode == "header" else {}
            return FakeResponse(body, hdrs)
        for hook in self.before_write:
            hook(self)
        if "json" not in (headers or {}).get("Content-Type", ""):
            raise self.error(400, {"error": "unacceptable content-type: ; 'application/json' required"})
        if_match = (headers or {}).get("If-Match")
        if if_match:
            etag_path = _caddy.parse_etag(if_match)[0]
            if if_match != self.etag(etag_path, self.encode(self.node(etag_path))):
                raise self.error(412, {"error": "If-Match header did not match current config hash"})
        parent_path, key = path.rsplit("/", 1)
        parent = self.node(parent_path)
        if method == "PATCH" and key not in parent:
            raise self.error(404, {"error": "[%s] key does not exist: %s" % (path, key)})
        if method == "PUT" and key in parent:
            raise self.error(409, {"error": "[%s] key already exists: %s" % (path, key)})
        if not self.drop_writes:
            parent[key] = json.loads(data)
        return FakeResponse(b"", {})

    def error(self, code, body):
        return HTTPError("http://fake", code, "error", {}, io.BytesIO(json.dumps(body).encode()))

    def writes(self):
        return [(m, p) for m, p, *_rest in self.requests if m != "GET"]


@pytest.fixture(params=["header", "trailer"])
def caddy(request, monkeypatch):
    fake = FakeCaddy(request.param)
    monkeypatch.setattr(_caddy, "open_url", fake)
    return fake


def run_module(capsys, check=False, diff=False, **args):
    args.setdefault("admin_url", "http://127.0.0.1:2019")
    args.update(_ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            caddy_upstream.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = exit_info.value.code
    return result


def dials_at(fake, path):
    return [u["dial"] for u in fake.node(path)["upstreams"]]


def test_check_mode_reports_the_change_and_writes_nothing(caddy, capsys):
    before = copy.deepcopy(caddy.config)
    result = run_module(capsys, check=True, diff=True, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["changed"] is True and result["rc"] == 0
    assert result["config_path"] == APP and result["handler_id"] == "app"
    assert result["previous_upstreams"] == ["127.0.0.1:8081", "127.0.0.1:8082"]
    assert result["upstreams"] == ["127.0.0.1:9001"]
    assert result["diff"]["before"] == {"upstreams": ["127.0.0.1:8081", "127.0.0.1:8082"]}
    assert result["diff"]["after"] == {"upstreams": ["127.0.0.1:9001"]}
    assert result["diff"]["before_header"] == APP
    assert caddy.writes() == [] and caddy.config == before


def test_real_run_patches_only_the_upstreams_with_if_match(caddy, capsys):
    before = copy.deepcopy(caddy.config)
    result = run_module(capsys, host="app.test", upstreams=["127.0.0.1:9001", "127.0.0.1:8081"])
    assert result["changed"] is True and "diff" not in result
    assert caddy.writes() == [("PATCH", APP + "/upstreams")]
    method, _path, headers, data, kwargs = [r for r in caddy.requests if r[0] == "PATCH"][0]
    body = caddy.encode(before)
    assert headers["If-Match"] == caddy.etag("/config/", body)
    assert headers["Content-Type"] == "application/json"
    assert kwargs["timeout"] == 10.0
    # 8081 keeps its object (max_requests), 9001 is new, 8082 is gone; nothing else changed
    assert json.loads(data) == [{"dial": "127.0.0.1:9001"}, {"dial": "127.0.0.1:8081", "max_requests": 10}]
    expected = copy.deepcopy(before)
    _caddy.get_at_path(expected, APP)["upstreams"] = json.loads(data)
    assert caddy.config == expected
    # verify read the config again and /reverse_proxy/upstreams
    gets = [p for m, p, *_r in caddy.requests if m == "GET"]
    assert gets == ["/config/", "/config/", "/reverse_proxy/upstreams"]


def test_same_set_in_another_order_is_no_change_and_no_write(caddy, capsys):
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:8082", "127.0.0.1:8081"])
    assert result["changed"] is False
    assert result["upstreams"] == result["previous_upstreams"] == ["127.0.0.1:8081", "127.0.0.1:8082"]
    assert caddy.writes() == []


def test_idempotent_second_run(caddy, capsys):
    assert run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])["changed"] is True
    assert run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])["changed"] is False
    assert run_module(capsys, check=True, handler_id="app", upstreams=["127.0.0.1:9001"])["changed"] is False
    assert len(caddy.writes()) == 1


def test_handler_without_upstreams_key_gets_a_put(caddy, capsys):
    path = "/config/apps/http/servers/srv0/routes/2/handle/0"
    result = run_module(capsys, handler_id="bare", upstreams=["127.0.0.1:9001"])
    assert result["changed"] is True and result["previous_upstreams"] == []
    assert caddy.writes() == [("PUT", path + "/upstreams")]
    assert dials_at(caddy, path) == ["127.0.0.1:9001"]


def test_conflict_is_retried_after_reading_again(caddy, capsys):
    def another_client(fake):
        fake.before_write.clear()
        fake.config["apps"]["http"]["servers"]["srv0"]["routes"].insert(0, {"handle": [
            {"handler": "static_response", "body": "new"}]})
    caddy.before_write.append(another_client)
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    shifted = APP.replace("/routes/0/handle/0/routes", "/routes/1/handle/0/routes", 1)
    assert result["changed"] is True and result["conflicts"] == 1
    assert result["config_path"] == shifted
    assert caddy.writes() == [("PATCH", APP + "/upstreams"), ("PATCH", shifted + "/upstreams")]
    assert dials_at(caddy, shifted) == ["127.0.0.1:9001"]


def test_conflicts_beyond_retries_fail_clearly_and_change_nothing(caddy, capsys):
    counter = iter(range(100))
    caddy.before_write.append(lambda fake: fake.config.update(meddled=next(counter)))
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"], retries=1)
    assert result["failed"] is True and result["changed"] is False and result["conflicts"] == 2
    assert result["msg"].startswith("Setting upstreams of handler at %s to 127.0.0.1:9001 failed: HTTP 412" % APP)
    assert "gave up after 2 conflicts (retries=1)" in result["msg"]
    assert ("computed from the body" in result["msg"]) is (caddy.mode == "trailer")
    assert len(caddy.writes()) == 2
    assert dials_at(caddy, APP) == ["127.0.0.1:8081", "127.0.0.1:8082"]


def test_wrong_etag_computation_would_be_caught(monkeypatch, capsys):
    """Against a Caddy 2.6 (no ETag header) a wrong hash must end in 412s, not a blind write."""
    fake = FakeCaddy("trailer")
    monkeypatch.setattr(_caddy, "open_url", fake)
    monkeypatch.setattr(_caddy, "fnv1a_32", lambda data: 0)
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"], retries=0)
    assert result["failed"] is True and "HTTP 412" in result["msg"]
    assert dials_at(fake, APP) == ["127.0.0.1:8081", "127.0.0.1:8082"]


def test_not_a_reverse_proxy(caddy, capsys):
    result = run_module(capsys, config_path=STATIC, upstreams=["127.0.0.1:9001"])
    assert result["failed"] is True
    assert result["msg"] == ("Selecting the reverse_proxy handler (config_path=%s) in the config of "
                             "http://127.0.0.1:2019 failed: config_path %s is a static_response handler "
                             "at %s, not reverse_proxy" % (STATIC, STATIC, STATIC))
    assert caddy.writes() == []


def test_ambiguous_and_missing_selections_list_what_was_found(caddy, capsys):
    caddy.config["apps"]["http"]["servers"]["srv1"] = copy.deepcopy(caddy.config["apps"]["http"]["servers"]["srv0"])
    result = run_module(capsys, host="app.test", upstreams=["127.0.0.1:9001"])
    assert "host app.test matches 2 reverse_proxy handlers" in result["msg"]
    assert APP in result["msg"] and APP.replace("srv0", "srv1") in result["msg"]
    result = run_module(capsys, host="app.test", server="srv1", upstreams=["127.0.0.1:9001"])
    assert result["changed"] is True and result["config_path"] == APP.replace("srv0", "srv1")
    result = run_module(capsys, handler_id="nope", upstreams=["127.0.0.1:9001"])
    assert "no handler has @id nope; handler @ids found: app, bare, static" in result["msg"]


@pytest.mark.parametrize("code, body, needles", [
    (403, {"error": "host not allowed: 127.0.0.1:2019"},
     ["Reading Caddy's config (GET /config/) failed: HTTP 403 host not allowed: 127.0.0.1:2019",
      "use that address in admin_url"]),
    (400, {"error": "unacceptable content-type: text/plain; 'application/json' required"},
     ["HTTP 400 unacceptable content-type", "Content-Type: application/json"]),
])
def test_http_errors_are_clear(caddy, capsys, code, body, needles):
    caddy.fail_with = (code, body)
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["failed"] is True and result["changed"] is False
    for needle in needles:
        assert needle in result["msg"]


def test_write_rejected_with_400_is_clear(caddy, capsys, monkeypatch):
    original = _caddy.CaddyAdmin.write_json

    def without_content_type(self, method, path, value, if_match, what):
        return self.request(method, path, what, data=json.dumps(value).encode(), headers={"If-Match": if_match})
    monkeypatch.setattr(_caddy.CaddyAdmin, "write_json", without_content_type)
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["msg"].startswith("Setting upstreams of handler at %s to 127.0.0.1:9001 failed: HTTP 400 "
                                    "unacceptable content-type" % APP)
    assert original is not without_content_type and dials_at(caddy, APP) == ["127.0.0.1:8081", "127.0.0.1:8082"]


def test_unreachable(caddy, capsys):
    caddy.unreachable = True
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"], admin_url="http://127.0.0.1:1")
    assert result["failed"] is True
    assert result["msg"] == ("Reading Caddy's config (GET /config/) failed: Caddy admin API at "
                             "http://127.0.0.1:1 is unreachable: [Errno 111] Connection refused")


def test_unix_socket(caddy, capsys):
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"],
                        admin_url="unix:///run/caddy/admin.sock")
    assert result["changed"] is True
    for _method, _path, headers, _data, kwargs in caddy.requests:
        assert kwargs["unix_socket"] == "/run/caddy/admin.sock" and headers["Host"] == ""


def test_verify_catches_an_upstream_caddy_does_not_run(caddy, capsys):
    caddy.hide_from_status.add("127.0.0.1:9001")
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"] == ("Verifying upstreams of handler at %s failed: GET /reverse_proxy/upstreams does "
                             "not list 127.0.0.1:9001" % APP)


def test_verify_catches_a_write_that_did_not_take(caddy, capsys):
    caddy.drop_writes = True
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"] == ("Verifying upstreams of handler at %s failed: Caddy's config has 127.0.0.1:8081, "
                             "127.0.0.1:8082, expected 127.0.0.1:9001" % APP)


def test_verify_false_skips_the_reads(caddy, capsys):
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"], verify=False)
    assert result["changed"] is True
    assert [p for m, p, *_r in caddy.requests if m == "GET"] == ["/config/"]


@pytest.mark.parametrize("args, needle", [
    (dict(handler_id="app", upstreams=["nope"]), "Invalid upstreams: upstream 'nope' is not a dial address"),
    (dict(handler_id="app", upstreams=[]), "Invalid upstreams: upstreams must name at least one"),
    (dict(handler_id="app", upstreams=["a:1"], retries=-1), "retries >= 0"),
    (dict(handler_id="app", upstreams=["a:1"], timeout=0), "timeout must be > 0"),
    (dict(handler_id="app", upstreams=["a:1"], admin_url="localhost:2019"), "admin_url localhost:2019"),
    (dict(handler_id="app", host="app.test", upstreams=["a:1"]), "mutually exclusive"),
    (dict(upstreams=["a:1"]), "one of the following is required: handler_id, host, config_path"),
    (dict(handler_id="app", server="srv0", upstreams=["a:1"]), "missing parameter(s) required by 'server': host"),
])
def test_bad_options_fail_before_any_request(caddy, capsys, args, needle):
    result = run_module(capsys, **args)
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert caddy.requests == []


# -- snippet and caddyfile: the switch on disk too --------------------------------------------
SNIPPET_HEAD = "# Managed by ops.rollback.caddy_upstream: the upstreams of %s. Edits are overwritten.\n"


class FakeAdapt:
    """Stands in for `caddy adapt` through AnsibleModule.run_command: the Caddyfile is the one
    of base_config() (so no @id), and the app.test proxy takes its `to` from the snippet when
    `imports` is true, keeps 127.0.0.1:8081 otherwise. Records argv and how many writes the
    fake Caddy had seen at that moment."""

    def __init__(self, caddy, snippet):
        self.caddy = caddy
        self.snippet = snippet
        self.imports = True
        self.fail = None          # (rc, stderr)
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append((list(args), kwargs.get("cwd"), len(self.caddy.writes())))
        if self.fail:
            return self.fail[0], "", self.fail[1]
        config = base_config()
        for match in _caddy.walk_handlers(config):
            match.handler.pop("@id", None)
        handler = _caddy.get_at_path(config, APP)
        if self.imports:
            with open(self.snippet) as handle:
                line = [text for text in handle.read().splitlines() if text.startswith("to ")][0]
            handler["upstreams"] = [{"dial": d} for d in line.split()[1:]]
        else:
            handler["upstreams"] = [{"dial": "127.0.0.1:8081"}]
        return 0, json.dumps(config), ""


@pytest.fixture
def on_disk(caddy, tmp_path, monkeypatch):
    """Paths of a snippet (not there yet), a Caddyfile and an executable `caddy`; the fake
    `caddy adapt` is `on_disk["adapt"]`."""
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("app.test {\n\treverse_proxy {\n\t\timport upstreams/app.caddy\n\t}\n}\n")
    binary = tmp_path / "caddy"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    (tmp_path / "upstreams").mkdir()
    snippet = str(tmp_path / "upstreams" / "app.caddy")
    adapt = FakeAdapt(caddy, snippet)
    monkeypatch.setattr(caddy_upstream.AnsibleModule, "run_command", adapt)
    return dict(snippet=snippet, caddyfile=str(caddyfile), caddy_binary=str(binary), adapt=adapt)


def disk_args(on_disk, **args):
    args.update(snippet=on_disk["snippet"], caddyfile=on_disk["caddyfile"], caddy_binary=on_disk["caddy_binary"])
    return args


def read_text(path):
    with open(path) as handle:
        return handle.read()


def test_snippet_is_written_and_checked_before_the_api_write(caddy, capsys, on_disk):
    result = run_module(capsys, **disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001", "127.0.0.1:9002"]))
    assert result["rc"] == 0 and result["changed"] is True and result["snippet_changed"] is True
    assert read_text(on_disk["snippet"]) == (SNIPPET_HEAD % "host app.test") + "to 127.0.0.1:9001 127.0.0.1:9002\n"
    assert oct(os.stat(on_disk["snippet"]).st_mode & 0o777) == "0o644"
    argv, cwd, writes_before = on_disk["adapt"].calls[0]
    assert argv == [on_disk["caddy_binary"], "adapt", "--config", on_disk["caddyfile"], "--adapter", "caddyfile"]
    assert cwd == os.path.dirname(on_disk["caddyfile"]) and writes_before == 0
    assert caddy.writes() == [("PATCH", APP + "/upstreams")]
    assert dials_at(caddy, APP) == ["127.0.0.1:9001", "127.0.0.1:9002"]


def test_snippet_check_real_check_real(caddy, capsys, on_disk):
    args = disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001"])
    assert [run_module(capsys, check=check, **args)["changed"] for check in (True, False, True, False)] == \
        [True, True, False, False]
    assert len(caddy.writes()) == 1 and len(on_disk["adapt"].calls) == 1


def test_check_mode_writes_no_snippet_and_diffs_both(caddy, capsys, on_disk):
    result = run_module(capsys, check=True, diff=True, **disk_args(on_disk, host="app.test",
                                                                   upstreams=["127.0.0.1:9001"]))
    assert result["changed"] is True and result["snippet_changed"] is True
    assert not os.path.exists(on_disk["snippet"]) and caddy.writes() == [] and on_disk["adapt"].calls == []
    upstreams, snippet = result["diff"]
    assert upstreams["before"] == {"upstreams": ["127.0.0.1:8081", "127.0.0.1:8082"]}
    assert upstreams["after"] == {"upstreams": ["127.0.0.1:9001"]}
    assert snippet == dict(before_header=on_disk["snippet"] + " (absent)", after_header=on_disk["snippet"],
                           before="", after=(SNIPPET_HEAD % "host app.test") + "to 127.0.0.1:9001\n")


def test_only_a_stale_snippet_is_rewritten_without_api_write(caddy, capsys, on_disk):
    assert run_module(capsys, host="app.test", upstreams=["127.0.0.1:9001"])["changed"] is True
    with open(on_disk["snippet"], "w") as handle:
        handle.write("to 127.0.0.1:8081\n")
    os.chmod(on_disk["snippet"], 0o600)
    result = run_module(capsys, diff=True, **disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001"]))
    assert result["changed"] is True and result["snippet_changed"] is True
    assert result["previous_upstreams"] == result["upstreams"] == ["127.0.0.1:9001"]
    assert [d["before"] for d in result["diff"]] == ["to 127.0.0.1:8081\n"]
    assert len(caddy.writes()) == 1 and len(on_disk["adapt"].calls) == 1
    assert read_text(on_disk["snippet"]).endswith("\nto 127.0.0.1:9001\n")
    assert oct(os.stat(on_disk["snippet"]).st_mode & 0o777) == "0o600"


def test_caddyfile_without_the_import_fails_restores_and_sends_nothing(caddy, capsys, on_disk):
    with open(on_disk["snippet"], "w") as handle:
        handle.write("to 127.0.0.1:8081 127.0.0.1:8082\n")
    on_disk["adapt"].imports = False
    before = copy.deepcopy(caddy.config)
    result = run_module(capsys, **disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001"]))
    assert result["failed"] is True and result["changed"] is False and result["snippet_changed"] is False
    assert result["msg"].startswith("Checking Caddyfile %s with snippet %s failed: the reverse_proxy handler "
                                    "(host=app.test) at %s in the adapted Caddyfile proxies to 127.0.0.1:8081, not "
                                    "exactly to 127.0.0.1:9001" % (on_disk["caddyfile"], on_disk["snippet"], APP))
    assert result["msg"].endswith("got back its previous content; nothing was sent to Caddy's admin API")
    assert read_text(on_disk["snippet"]) == "to 127.0.0.1:8081 127.0.0.1:8082\n"
    assert caddy.writes() == [] and caddy.config == before


def test_adapt_error_names_caddyfile_snippet_and_stderr(caddy, capsys, on_disk):
    on_disk["adapt"].fail = (1, "Error: adapting config using caddyfile: Caddyfile:3: unrecognized directive: imprt")
    result = run_module(capsys, **disk_args(on_disk, handler_id="app", upstreams=["127.0.0.1:9001"]))
    assert result["failed"] is True and result["changed"] is False
    for needle in (on_disk["caddyfile"], on_disk["snippet"], "exited with 1", "unrecognized directive: imprt",
                   "was removed again (it did not exist before)"):
        assert needle in result["msg"]
    assert not os.path.exists(on_disk["snippet"]) and caddy.writes() == []


def test_handler_id_is_checked_at_its_live_path_in_the_adapted_caddyfile(caddy, capsys, on_disk):
    result = run_module(capsys, **disk_args(on_disk, handler_id="app", upstreams=["127.0.0.1:9001"]))
    assert result["changed"] is True and result["snippet_changed"] is True
    assert read_text(on_disk["snippet"]).startswith(SNIPPET_HEAD % "handler @id app")
    # a Caddyfile that does not feed that handler from the snippet: refused, saying where it looked
    on_disk["adapt"].imports = False
    result = run_module(capsys, **disk_args(on_disk, handler_id="app", upstreams=["127.0.0.1:9002"]))
    assert "(config_path=%s (where handler_id=app is in the live config; a Caddyfile cannot write @id))" \
        % APP in result["msg"]
    assert read_text(on_disk["snippet"]).endswith("to 127.0.0.1:9001\n") and len(caddy.writes()) == 1


def test_failed_api_write_restores_the_snippet(caddy, capsys, on_disk):
    with open(on_disk["snippet"], "w") as handle:
        handle.write("old\n")
    counter = iter(range(100))
    caddy.before_write.append(lambda fake: fake.config.update(meddled=next(counter)))
    result = run_module(capsys, **disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001"], retries=0))
    assert result["failed"] is True and result["changed"] is False and result["snippet_changed"] is False
    assert "HTTP 412" in result["msg"]
    assert result["msg"].endswith("; snippet %s got back its previous content" % on_disk["snippet"])
    assert read_text(on_disk["snippet"]) == "old\n" and len(on_disk["adapt"].calls) == 1


def test_snippet_without_caddyfile_is_written_unchecked(caddy, capsys, on_disk):
    result = run_module(capsys, snippet=on_disk["snippet"], host="app.test", upstreams=["127.0.0.1:9001"])
    assert result["changed"] is True and result["snippet_changed"] is True
    assert on_disk["adapt"].calls == [] and os.path.exists(on_disk["snippet"])


def test_without_snippet_nothing_on_disk(caddy, capsys):
    result = run_module(capsys, handler_id="app", upstreams=["127.0.0.1:9001"])
    assert result["snippet_changed"] is False


@pytest.mark.parametrize("change, needle", [
    (dict(snippet=None), "missing parameter(s) required by 'caddyfile': snippet"),
    (dict(caddy_binary="/nonexistent/caddy"), "caddy_binary /nonexistent/caddy is not an executable program"),
    (dict(caddy_binary="no-such-caddy-binary"), "caddy_binary no-such-caddy-binary is not an executable"),
    (dict(caddyfile="/nonexistent/Caddyfile"), "caddyfile /nonexistent/Caddyfile does not exist"),
])
def test_bad_snippet_options_fail_before_any_request(caddy, capsys, on_disk, change, needle):
    args = disk_args(on_disk, host="app.test", upstreams=["127.0.0.1:9001"])
    args.update(change)
    result = run_module(capsys, **args)
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert caddy.requests == [] and on_disk["adapt"].calls == []


def test_snippet_directory_must_exist(caddy, capsys, on_disk, tmp_path):
    missing = str(tmp_path / "nope" / "app.caddy")
    for check in (True, False):
        result = run_module(capsys, check=check, snippet=missing, host="app.test", upstreams=["127.0.0.1:9001"])
        assert result["failed"] is True
        assert result["msg"] == "Snippet %s cannot be written: its directory %s does not exist" % (
            missing, tmp_path / "nope")
    assert caddy.writes() == []

"""Unit tests of plugins/module_utils/_caddy_snippet.py: the pure functions, the file writes
(on a temporary directory) and Snippet with a fake run_command (no caddy)."""
import json
import os
import stat

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _caddy_snippet
from ansible_collections.ops.rollback.plugins.module_utils._caddy_snippet import (
    Snippet, SnippetError, adapt_argv, adapted_selector, check_adapted, describe_selector, read_bytes,
    render_snippet, restore, write_atomic,
)

A, B, C = "127.0.0.1:18201", "127.0.0.1:18202", "127.0.0.1:18203"
HANDLER = "/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0"


def adapted(*dials, host="web.test", extra=None):
    """What `caddy adapt` makes of `web.test { reverse_proxy { import snippet } }`."""
    proxy = {"handler": "reverse_proxy", "upstreams": [{"dial": d} for d in dials]}
    routes = [{"match": [{"host": [host]}], "handle": [{"handler": "subroute", "routes": [{"handle": [proxy]}]}],
               "terminal": True}]
    routes += extra or []
    return {"apps": {"http": {"servers": {"srv0": {"listen": [":80"], "routes": routes}}}}}


class FakeRun:
    """Stands in for AnsibleModule.run_command; records argv, cwd and the snippet's content
    at the moment caddy would have read it."""

    def __init__(self, snippet_path, answer):
        self.snippet_path = snippet_path
        self.answer = answer          # callable(snippet bytes) -> (rc, stdout, stderr)
        self.calls = []

    def __call__(self, argv, cwd=None):
        content = read_bytes(self.snippet_path)
        self.calls.append((argv, cwd, content))
        return self.answer(content)


def answer_with(config, rc=0, err=""):
    return lambda content: (rc, json.dumps(config), err)


# -- pure functions -------------------------------------------------------------------------
@pytest.mark.parametrize("selector, text", [
    (dict(handler_id="web"), "handler @id web"),
    (dict(host="web.test"), "host web.test"),
    (dict(host="web.test", server="srv1"), "host web.test in server srv1"),
    (dict(config_path=HANDLER, server=None), "config_path " + HANDLER),
    (dict(host="a\nb"), "host a b"),
    (dict(), "no handler"),
])
def test_describe_selector(selector, text):
    assert describe_selector(**selector) == text


def test_render_snippet_is_a_comment_and_one_to_line_in_the_given_order():
    text = render_snippet([B, A, "[::1]:8080"], "host web.test")
    assert text == ("# Managed by ops.rollback.caddy_upstream: the upstreams of host web.test. "
                    "Edits are overwritten.\nto %s %s [::1]:8080\n" % (B, A))
    assert render_snippet([A], "host a\nb").splitlines()[0].endswith("of host a b. Edits are overwritten.")
    with pytest.raises(ValueError):
        render_snippet([], "host web.test")


def test_adapt_argv_is_a_list():
    assert adapt_argv("/usr/bin/caddy", "/etc/caddy/Caddyfile") == [
        "/usr/bin/caddy", "adapt", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]


def test_adapted_selector_replaces_handler_id_by_the_live_path():
    assert adapted_selector(dict(handler_id="web", host=None, server=None, config_path=None), HANDLER) == \
        dict(config_path=HANDLER)
    assert adapted_selector(dict(handler_id=None, host="web.test", server=None, config_path=None), HANDLER) == \
        dict(host="web.test")
    assert adapted_selector(dict(handler_id=None, host="web.test", server="srv0", config_path=""), HANDLER) == \
        dict(host="web.test", server="srv0")


@pytest.mark.parametrize("selector", [dict(host="web.test"), dict(host="WEB.test", server="srv0"),
                                      dict(config_path=HANDLER), dict(handler_id="web")])
def test_check_adapted_accepts_exactly_the_new_set_in_any_order(selector):
    assert check_adapted(adapted(B, A), selector, HANDLER, [A, B]) == HANDLER


@pytest.mark.parametrize("dials, needle", [
    ((A,), "proxies to 127.0.0.1:18201, not exactly to 127.0.0.1:18201, 127.0.0.1:18202"),
    ((C, A, B), "proxies to 127.0.0.1:18203, 127.0.0.1:18201, 127.0.0.1:18202, not exactly"),
    ((A, A, B), "not exactly"),      # `to A` in the Caddyfile plus the snippet's `to A B`
    ((), "proxies to nothing"),
])
def test_check_adapted_refuses_anything_else(dials, needle):
    with pytest.raises(SnippetError) as info:
        check_adapted(adapted(*dials), dict(host="web.test"), HANDLER, [A, B])
    assert needle in str(info.value)
    assert "does its reverse_proxy block import the snippet" in str(info.value)


def test_check_adapted_selection_errors_say_where():
    with pytest.raises(SnippetError) as info:
        check_adapted(adapted(A, host="other.test"), dict(host="web.test"), HANDLER, [A])
    assert str(info.value).startswith("selecting the reverse_proxy handler (host=web.test) in the adapted "
                                      "Caddyfile failed: no reverse_proxy handler serves host web.test")
    # handler_id: looked up at the live path, which here holds something else
    other = adapted(A, extra=[])
    other["apps"]["http"]["servers"]["srv0"]["routes"].insert(0, {"handle": [{"handler": "static_response"}]})
    with pytest.raises(SnippetError) as info:
        check_adapted(other, dict(handler_id="web"), HANDLER, [A])
    assert "(config_path=%s (where handler_id=web is in the live config; a Caddyfile cannot write @id))" \
        % HANDLER in str(info.value)


# -- files ----------------------------------------------------------------------------------
def test_read_bytes(tmp_path):
    path = tmp_path / "web.caddy"
    assert read_bytes(str(path)) is None
    path.write_bytes(b"to a:1\n")
    assert read_bytes(str(path)) == b"to a:1\n"
    with pytest.raises(SnippetError, match="Reading snippet"):
        read_bytes(str(tmp_path))


def test_write_atomic_new_file_gets_0644_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "web.caddy")
    old_umask = os.umask(0o077)
    try:
        write_atomic(path, b"to a:1\n")
    finally:
        os.umask(old_umask)
    assert read_bytes(path) == b"to a:1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(str(tmp_path)) == ["web.caddy"]


def test_write_atomic_keeps_the_mode_and_replaces_the_inode(tmp_path):
    path = tmp_path / "web.caddy"
    path.write_bytes(b"old\n")
    os.chmod(str(path), 0o640)
    before = os.stat(str(path)).st_ino
    write_atomic(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert os.stat(str(path)).st_ino != before            # renamed over, not written in place
    assert sorted(os.listdir(str(tmp_path))) == ["web.caddy"]


def test_write_atomic_needs_the_directory(tmp_path):
    missing = tmp_path / "nope" / "web.caddy"
    with pytest.raises(SnippetError) as info:
        write_atomic(str(missing), b"x")
    assert str(info.value) == ("Snippet %s cannot be written: its directory %s does not exist"
                               % (missing, tmp_path / "nope"))
    with pytest.raises(SnippetError, match="is a directory"):
        write_atomic(str(tmp_path), b"x")


def test_write_atomic_failure_removes_the_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "web.caddy"
    path.write_bytes(b"old\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(_caddy_snippet.os, "replace", refuse)
    with pytest.raises(SnippetError) as info:
        write_atomic(str(path), b"new\n")
    assert str(info.value) == "Writing snippet %s failed: [Errno 28] No space left on device" % path
    assert path.read_bytes() == b"old\n" and os.listdir(str(tmp_path)) == ["web.caddy"]


def test_restore_puts_back_bytes_or_removes(tmp_path):
    path = tmp_path / "web.caddy"
    path.write_bytes(b"new\n")
    os.chmod(str(path), 0o600)
    restore(str(path), b"old\n")
    assert path.read_bytes() == b"old\n" and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    restore(str(path), None)
    assert not path.exists()
    restore(str(path), None)                              # already gone: fine


# -- Snippet --------------------------------------------------------------------------------
def make(tmp_path, answer=None, content=None, caddyfile=True):
    path = tmp_path / "web.caddy"
    if content is not None:
        path.write_bytes(content)
    cfile = tmp_path / "Caddyfile"
    cfile.write_text("web.test {\n\treverse_proxy {\n\t\timport web.caddy\n\t}\n}\n")
    run = FakeRun(str(path), answer or answer_with(adapted(A, B)))
    snippet = Snippet(str(path), str(cfile) if caddyfile else None, "/usr/bin/caddy", run)
    return snippet, path, run


SELECT = dict(handler_id=None, host="web.test", server=None, config_path=None)


def test_plan_compares_without_writing(tmp_path):
    snippet, path, run = make(tmp_path)
    assert snippet.plan([A, B], "host web.test") is True and snippet.old is None
    assert not path.exists() and run.calls == []
    path.write_bytes(render_snippet([A, B], "host web.test").encode())
    assert snippet.plan([A, B], "host web.test") is False
    assert snippet.plan([B, A], "host web.test") is True     # the order written is the order given


def test_plan_fails_clearly_without_the_directory(tmp_path):
    snippet = Snippet(str(tmp_path / "upstreams" / "web.caddy"))
    with pytest.raises(SnippetError, match="its directory %s does not exist" % (tmp_path / "upstreams")):
        snippet.plan([A], "host web.test")


def test_apply_writes_then_adapts_with_the_new_content(tmp_path):
    snippet, path, run = make(tmp_path, content=b"to 127.0.0.1:1\n")
    snippet.plan([A, B], "host web.test")
    snippet.apply(SELECT, HANDLER, [A, B])
    expected = render_snippet([A, B], "host web.test").encode()
    assert path.read_bytes() == expected and snippet.written is True
    argv, cwd, seen = run.calls[0]
    assert argv == ["/usr/bin/caddy", "adapt", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"]
    assert cwd == str(tmp_path) and seen == expected      # caddy read the new snippet


def test_apply_unchanged_still_checks_but_does_not_write(tmp_path):
    content = render_snippet([A, B], "host web.test").encode()
    snippet, path, run = make(tmp_path, content=content)
    mtime = os.stat(str(path)).st_mtime_ns
    snippet.plan([A, B], "host web.test")
    snippet.apply(SELECT, HANDLER, [A, B])
    assert snippet.written is False and os.stat(str(path)).st_mtime_ns == mtime and len(run.calls) == 1


def test_apply_without_caddyfile_only_writes(tmp_path):
    snippet, path, run = make(tmp_path, caddyfile=False)
    snippet.plan([A], "host web.test")
    snippet.apply(SELECT, HANDLER, [A])
    assert path.read_bytes().endswith(b"\nto 127.0.0.1:18201\n") and run.calls == []


def test_adapt_failure_restores_the_previous_bytes(tmp_path):
    def answer(content):
        return 1, "", "Error: Caddyfile:3 - Error during parsing: File to import not found: web.caddy"
    snippet, path, run = make(tmp_path, answer=answer, content=b"to 127.0.0.1:1\n")
    os.chmod(str(path), 0o640)
    snippet.plan([A, B], "host web.test")
    with pytest.raises(SnippetError) as info:
        snippet.apply(SELECT, HANDLER, [A, B])
    msg = str(info.value)
    assert msg.startswith("Checking Caddyfile %s with snippet %s failed: `/usr/bin/caddy adapt --config %s "
                          "--adapter caddyfile` exited with 1: Error: Caddyfile:3 - Error during parsing: File "
                          "to import not found: web.caddy;" % (tmp_path / "Caddyfile", path, tmp_path / "Caddyfile"))
    assert msg.endswith("snippet %s got back its previous content; nothing was sent to Caddy's admin API" % path)
    assert path.read_bytes() == b"to 127.0.0.1:1\n" and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert run.calls[0][2] != b"to 127.0.0.1:1\n" and snippet.written is False


def test_adapt_failure_removes_a_snippet_that_did_not_exist(tmp_path):
    snippet, path, _run = make(tmp_path, answer=lambda content: (1, "", "boom"))
    snippet.plan([A], "host web.test")
    with pytest.raises(SnippetError, match="was removed again .it did not exist before."):
        snippet.apply(SELECT, HANDLER, [A])
    assert not path.exists() and os.listdir(str(tmp_path)) == ["Caddyfile"]


def test_check_failure_restores_and_names_what_caddy_adapted(tmp_path):
    # the Caddyfile does not import the snippet: the handler keeps its own `to`
    snippet, path, _run = make(tmp_path, answer=answer_with(adapted(C)), content=b"old\n")
    snippet.plan([A], "host web.test")
    with pytest.raises(SnippetError) as info:
        snippet.apply(SELECT, HANDLER, [A])
    assert "at %s in the adapted Caddyfile proxies to 127.0.0.1:18203, not exactly to 127.0.0.1:18201" \
        % HANDLER in str(info.value)
    assert path.read_bytes() == b"old\n"


def test_adapt_output_that_is_not_json(tmp_path):
    snippet, path, _run = make(tmp_path, answer=lambda content: (0, "not json", ""), content=b"old\n")
    snippet.plan([A], "host web.test")
    with pytest.raises(SnippetError, match="printed no JSON config"):
        snippet.apply(SELECT, HANDLER, [A])
    assert path.read_bytes() == b"old\n"


def test_unchanged_snippet_and_failed_check_is_left_alone(tmp_path):
    content = render_snippet([A], "host web.test").encode()
    snippet, path, _run = make(tmp_path, answer=answer_with(adapted(C)), content=content)
    snippet.plan([A], "host web.test")
    with pytest.raises(SnippetError, match="snippet %s was left as it was" % path):
        snippet.apply(SELECT, HANDLER, [A])
    assert path.read_bytes() == content


def test_failed_restore_is_reported(tmp_path, monkeypatch):
    snippet, path, _run = make(tmp_path, answer=lambda content: (1, "", "boom"), content=b"old\n")
    snippet.plan([A], "host web.test")
    real = _caddy_snippet.write_atomic
    calls = []

    def second_write_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            raise SnippetError("Writing snippet %s failed: read-only file system" % path)
        return real(*args, **kwargs)
    monkeypatch.setattr(_caddy_snippet, "write_atomic", second_write_fails)
    with pytest.raises(SnippetError, match="restoring the previous content of snippet .* failed too: Writing"):
        snippet.apply(SELECT, HANDLER, [A])
    assert snippet.written is True


def test_rollback_after_a_failed_api_write(tmp_path):
    snippet, path, _run = make(tmp_path, content=b"old\n")
    snippet.plan([A, B], "host web.test")
    snippet.apply(SELECT, HANDLER, [A, B])
    assert snippet.rollback() == "snippet %s got back its previous content" % path
    assert path.read_bytes() == b"old\n"
    assert snippet.rollback() == "snippet %s was left as it was" % path


def test_symlink_is_followed(tmp_path):
    target = tmp_path / "real.caddy"
    target.write_bytes(b"old\n")
    link = tmp_path / "web.caddy"
    os.symlink(str(target), str(link))
    snippet = Snippet(str(link))
    snippet.plan([A], "host web.test")
    snippet.apply(SELECT, HANDLER, [A])
    assert os.path.islink(str(link)) and target.read_bytes().endswith(b"to 127.0.0.1:18201\n")


def test_diff(tmp_path):
    snippet, path, _run = make(tmp_path)
    snippet.plan([A], "host web.test")
    assert snippet.diff() == dict(before_header="%s (absent)" % path, after_header=str(path), before="",
                                  after=render_snippet([A], "host web.test"))
    path.write_bytes(b"to 127.0.0.1:1\n")
    snippet.plan([A], "host web.test")
    assert snippet.diff()["before"] == "to 127.0.0.1:1\n" and snippet.diff()["before_header"] == str(path)

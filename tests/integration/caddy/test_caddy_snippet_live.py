"""ops.rollback.caddy_upstream with `snippet` and `caddyfile`, against a real Caddy run from a
Caddyfile: Debian's 2.6.2 and a current 2.x, through ansible-playbook.

Each test starts its own Caddy (`caddy run --config Caddyfile --adapter caddyfile`, admin on a
free 127.0.0.1 port, HOME/XDG dirs in a temporary directory) whose site proxies to backend A
through `reverse_proxy { import <snippet> }`, and two backends answering their names. It then
runs the module, and checks what matters on the real system: which backend answers through
Caddy, before and after `caddy reload` (forced, so Caddy really loads the Caddyfile again) and
a restart, the snippet's bytes, and Caddy's live config.

A control test shows that the reload does undo a switch made through the admin API only, so
the persistence test can fail.
"""
import os
import shutil
import tempfile

import pytest

from ansible_run import run_playbook
from caddy_helpers import Backend, CaddyfileCaddy, caddy_versions, free_port, get, require_caddy

SNIPPET_HEAD = ("# Managed by ops.rollback.caddy_upstream: the upstreams of host 127.0.0.1. "
                "Edits are overwritten.\n")

# The same site, proxying on its own: it does not import the snippet.
CADDYFILE_NO_IMPORT = """{
\tadmin 127.0.0.1:%(admin)d
}

http://127.0.0.1:%(port)d {
\tbind 127.0.0.1
\treverse_proxy %(dial)s
}
"""

PLAYBOOK = """---
- name: Drive ops.rollback.caddy_upstream with a snippet
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check mode, first
      ops.rollback.caddy_upstream: &caddy_upstream_args
        admin_url: "{{ admin_url }}"
        host: 127.0.0.1
        upstreams: "{{ upstreams }}"
        snippet: "{{ snippet | default(omit) }}"
        caddyfile: "{{ caddyfile | default(omit) }}"
        caddy_binary: "{{ caddy_binary }}"
      check_mode: true
      diff: true
      failed_when: false
    - name: Real, first
      ops.rollback.caddy_upstream: *caddy_upstream_args
      diff: true
      failed_when: false
    - name: Check mode, second
      ops.rollback.caddy_upstream: *caddy_upstream_args
      check_mode: true
      diff: true
      failed_when: false
    - name: Real, second
      ops.rollback.caddy_upstream: *caddy_upstream_args
      diff: true
      failed_when: false
"""
PHASES = ["Check mode, first", "Real, first", "Check mode, second", "Real, second"]


@pytest.fixture(scope="module", params=caddy_versions())
def snippet_caddy(request):
    return require_caddy(request.param)


class Site(CaddyfileCaddy):
    """A Caddy run from a Caddyfile whose one site imports the upstreams snippet, and the
    backends A and B it can proxy to (A at the start)."""

    def __init__(self, binary, workdir):  # pylint: disable=super-init-not-called
        self.backends = [Backend("A"), Backend("B")]
        self.a, self.b = (backend.dial for backend in self.backends)
        try:
            super().__init__(binary, workdir, self.a)
        except Exception:
            self.close_backends()
            raise
        self.admin, self.port = self.admin_port, self.proxy_port

    @staticmethod
    def write_file(path, text):
        with open(path, "w") as handle:
            handle.write(text)

    def read_snippet(self):
        with open(self.snippet, "rb") as handle:
            return handle.read()

    def log(self):
        with open(self.log_file) as handle:
            return handle.read()[-3000:]

    def answers(self, count=5):
        """The bodies of a few requests through Caddy, each on a fresh connection."""
        return {get(self.port, "/")[1] for attempt in range(count)}

    def reload(self):
        proc = self.reload_from_caddyfile()
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        self.config_bytes()        # the admin API answers again

    def close_backends(self):
        for backend in self.backends:
            backend.close()

    def close(self):
        self.stop()
        self.close_backends()

    def play(self, **extra_vars):
        playbook = os.path.join(self.workdir, "playbook.yml")
        self.write_file(playbook, PLAYBOOK)
        extra_vars.update(admin_url=self.admin_url, caddy_binary=self.binary)
        run = run_playbook(playbook, extra_vars=extra_vars)
        assert run.rc == 0, run.stdout[-4000:] + run.stderr[-4000:]
        results = []
        for phase in PHASES:
            found = run.task_results(phase)
            assert len(found) == 1, (phase, run.stdout[-3000:])
            results.append(found[0])
        return results


@pytest.fixture
def site(snippet_caddy):
    workdir = tempfile.mkdtemp(prefix="cus-")
    built = Site(snippet_caddy, workdir)
    try:
        assert built.answers() == {b"A"}, built.log()
        yield built
    finally:
        built.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_switch_survives_reload_and_restart(site):
    results = site.play(upstreams=[site.b], snippet=site.snippet, caddyfile=site.caddyfile)
    for result, changed in zip(results, [True, True, False, False]):
        assert "msg" not in result, result
        assert result["changed"] is changed and result["snippet_changed"] is changed, result
        assert result["upstreams"] == [site.b]
    check, real = results[0], results[1]
    assert check["previous_upstreams"] == real["previous_upstreams"] == [site.a]
    assert [d["after"] for d in check["diff"]] == [{"upstreams": [site.b]}, SNIPPET_HEAD + "to %s\n" % site.b]
    assert check["diff"][1]["before"] == "to %s\n" % site.a
    assert site.read_snippet() == (SNIPPET_HEAD + "to %s\n" % site.b).encode()
    assert site.dials() == [[site.b]]
    assert site.answers() == {b"B"}
    site.reload()
    assert site.dials() == [[site.b]] and site.answers() == {b"B"}
    site.restart()
    assert site.dials() == [[site.b]] and site.answers() == {b"B"}


def test_without_snippet_a_reload_takes_the_switch_back(site):
    """The control: the same switch through the admin API only is undone by the reload."""
    results = site.play(upstreams=[site.b])
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert [r["snippet_changed"] for r in results] == [False] * 4
    assert site.answers() == {b"B"} and site.read_snippet() == ("to %s\n" % site.a).encode()
    site.reload()
    assert site.dials() == [[site.a]] and site.answers() == {b"A"}


def test_caddyfile_without_the_import_fails_and_changes_nothing(site):
    other = os.path.join(site.workdir, "Caddyfile.noimport")
    site.write_file(other, CADDYFILE_NO_IMPORT % dict(admin=site.admin, port=site.port,
                                                      dial="127.0.0.1:%d" % free_port()))
    snippet_before = site.read_snippet()
    config_before = site.config_bytes()
    results = site.play(upstreams=[site.b], snippet=site.snippet, caddyfile=other)
    # check mode cannot run caddy adapt without writing: it predicts the change
    for result in (results[0], results[2]):
        assert result["changed"] is True and "msg" not in result, result
    for result in (results[1], results[3]):
        msg = result["msg"]
        assert msg.startswith("Checking Caddyfile %s with snippet %s failed: the reverse_proxy handler "
                              "(host=127.0.0.1) at " % (other, site.snippet)), msg
        assert "in the adapted Caddyfile proxies to 127.0.0.1:" in msg and "not exactly to %s" % site.b in msg
        assert msg.endswith("snippet %s got back its previous content; nothing was sent to Caddy's admin API"
                            % site.snippet), msg
        assert result["changed"] is False and result["snippet_changed"] is False
    assert site.read_snippet() == snippet_before
    assert site.config_bytes() == config_before
    assert site.answers() == {b"A"}


def test_adapt_error_shows_caddys_stderr(site):
    broken = os.path.join(site.workdir, "Caddyfile.broken")
    site.write_file(broken, "http://127.0.0.1:%d {\n\treverse_proxy {\n\t\timprt %s\n\t}\n}\n"
                    % (site.port, site.snippet))
    config_before = site.config_bytes()
    results = site.play(upstreams=[site.b], snippet=site.snippet, caddyfile=broken)
    msg = results[1]["msg"]
    assert msg.startswith("Checking Caddyfile %s with snippet %s failed: `%s adapt --config %s --adapter "
                          "caddyfile` exited with 1: " % (broken, site.snippet, site.binary, broken)), msg
    assert "imprt" in msg, msg
    assert site.read_snippet() == ("to %s\n" % site.a).encode()
    assert site.config_bytes() == config_before and site.answers() == {b"A"}

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The on-disk half of ``caddy_upstream``: a Caddyfile snippet holding the upstreams.

A switch made through the admin API is lost on ``caddy reload`` or a restart, which load the
Caddyfile again. So the Caddyfile's ``reverse_proxy`` block imports a small file that holds
nothing but its ``to`` line::

    reverse_proxy {
        import /etc/caddy/upstreams/web.caddy
    }

and the module rewrites that file. This file does everything about it:

* pure functions: ``describe_selector``, ``render_snippet``, ``adapt_argv`` and
  ``check_adapted`` (is the handler, found in ``caddy adapt``'s output with the same
  ``select_handler`` as in the live config, proxying to exactly the new upstreams?);
* file I/O: ``read_bytes``, ``write_atomic`` (``_state_files.replace_file``, keeping the
  file's mode and owner), ``restore``;
* ``Snippet``, which ties them together for one task: plan, write and check (restoring the
  previous bytes when the check fails), restore after a failed API write, diff.

Where the handler is looked for in the adapted Caddyfile: with ``host`` or ``config_path``,
exactly as in the live config. A Caddyfile cannot write ``@id``, so with ``handler_id`` it is
the handler at the path where ``handler_id`` found it in the live config; that is the same
handler when the live config is the adapted Caddyfile with ``@id`` tags added, and the check
fails (safely, nothing sent to Caddy) otherwise.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.ops.rollback.plugins.module_utils._caddy import (
    CaddyError,
    SelectionError,
    select_handler,
    upstream_dials,
)
from ansible_collections.ops.rollback.plugins.module_utils._state_files import replace_file

MANAGED_BY = "ops.rollback.caddy_upstream"
DEFAULT_MODE = 0o644
# How much of caddy's stderr goes into an error message (its last characters).
STDERR_TAIL = 2000


class SnippetError(CaddyError):
    """Reading, writing, restoring or checking the snippet failed."""


# -- pure functions -------------------------------------------------------------------------
def describe_selector(handler_id=None, host=None, server=None, config_path=None):
    """``handler @id web``, ``host shop.test in server srv0``, ``config_path /config/...``:
    the handler a selector names, in words (one line)."""
    if handler_id not in (None, ""):
        text = "handler @id %s" % handler_id
    elif host not in (None, ""):
        text = "host %s" % host
        if server not in (None, ""):
            text += " in server %s" % server
    elif config_path not in (None, ""):
        text = "config_path %s" % config_path
    else:
        text = "no handler"
    return " ".join(str(text).split())


def render_snippet(dials, description):
    """The snippet's whole text: one comment line saying who manages it, one ``to`` line."""
    if not dials:
        raise ValueError("a snippet needs at least one upstream")
    return ("# Managed by %s: the upstreams of %s. Edits are overwritten.\nto %s\n"
            % (MANAGED_BY, " ".join(str(description).split()), " ".join(dials)))


def adapt_argv(caddy_binary, caddyfile):
    """The command that turns the Caddyfile into the JSON config Caddy would load."""
    return [caddy_binary, "adapt", "--config", caddyfile, "--adapter", "caddyfile"]


def adapted_selector(selector, live_path):
    """The selector to use on the adapted Caddyfile (see the module docstring): the same one,
    except that ``handler_id`` becomes the live handler's ``config_path``."""
    if selector.get("handler_id") not in (None, ""):
        return dict(config_path=live_path)
    return dict((k, v) for k, v in selector.items() if v not in (None, ""))


def check_adapted(config, selector, live_path, desired):
    """The path of the handler the selector finds in the adapted config, when its upstreams
    are exactly ``desired`` (any order, no repeats); SnippetError saying what is wrong
    otherwise."""
    wanted = adapted_selector(selector, live_path)
    how = ", ".join("%s=%s" % item for item in sorted(wanted.items()))
    if selector.get("handler_id") not in (None, ""):
        how += " (where handler_id=%s is in the live config; a Caddyfile cannot write @id)" % selector["handler_id"]
    try:
        match = select_handler(config, **wanted)
    except SelectionError as exc:
        raise SnippetError("selecting the reverse_proxy handler (%s) in the adapted Caddyfile failed: %s"
                           % (how, exc))
    dials = upstream_dials(match.handler)
    if sorted(str(d) for d in dials) != sorted(desired):
        raise SnippetError("the reverse_proxy handler (%s) at %s in the adapted Caddyfile proxies to %s, not "
                           "exactly to %s: does its reverse_proxy block import the snippet, with no other "
                           "`to`?" % (how, match.path, ", ".join(str(d) for d in dials) or "nothing",
                                      ", ".join(desired)))
    return match.path


# -- files ----------------------------------------------------------------------------------
def read_bytes(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnippetError("Reading snippet %s failed: %s" % (path, exc))


def check_parent(path):
    """SnippetError unless the file's directory exists and the path is not a directory."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SnippetError("Snippet %s cannot be written: its directory %s does not exist" % (path, parent))
    if os.path.isdir(path):
        raise SnippetError("Snippet %s is a directory, not a file" % path)


def write_atomic(path, data, default_mode=DEFAULT_MODE):
    """Replace the file's content with ``data`` atomically (see ``replace_file``), keeping the
    old file's mode (``default_mode`` for a new file) and, when allowed, its owner: Caddy,
    which reads it, sees the old or the new content, never a part."""
    check_parent(path)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise SnippetError("Writing snippet %s failed: %s" % (path, exc))
    mode = stat.S_IMODE(old.st_mode) if old else default_mode
    owner = (old.st_uid, old.st_gid) if old and os.geteuid() == 0 else None
    try:
        replace_file(path, data, mode, owner)
    except OSError as exc:
        raise SnippetError("Writing snippet %s failed: %s" % (path, exc))


def restore(path, previous):
    """Put back what ``read_bytes`` returned before: those bytes, or no file."""
    if previous is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SnippetError("Removing snippet %s failed: %s" % (path, exc))
    else:
        write_atomic(path, previous)


# -- one task's snippet ---------------------------------------------------------------------
class Snippet:
    """The snippet of one task: ``plan`` what it must hold, ``apply`` (write, then check the
    Caddyfile with ``caddy adapt``, restoring the old bytes when that fails), ``rollback``
    after a failed API write, ``diff``."""

    def __init__(self, path, caddyfile=None, caddy_binary=None, run_command=None):
        # Write through a symlink to its target, so the link stays a link.
        self.path = os.path.realpath(path)
        self.shown = path
        self.caddyfile = caddyfile
        self.caddy_binary = caddy_binary
        self.run_command = run_command
        self.old = None
        self.new = None
        self.written = False

    @property
    def changed(self):
        return self.new is not None and self.old != self.new

    def plan(self, dials, description):
        """Work out the new content and whether it differs; touches nothing."""
        check_parent(self.path)
        self.old = read_bytes(self.path)
        self.new = render_snippet(dials, description).encode("utf-8")
        return self.changed

    def apply(self, selector, live_path, desired):
        """Write the planned content when it differs, then, with a Caddyfile, check that
        Caddy would load exactly ``desired`` into the selected handler from it. On failure
        the snippet is put back as it was and SnippetError says why."""
        if self.changed:
            write_atomic(self.path, self.new)
            self.written = True
        if not self.caddyfile:
            return
        try:
            self.check_caddyfile(selector, live_path, desired)
        except SnippetError as exc:
            raise SnippetError("Checking Caddyfile %s with snippet %s failed: %s; %s; nothing was sent to "
                               "Caddy's admin API" % (self.caddyfile, self.shown, exc, self.rollback()))

    def check_caddyfile(self, selector, live_path, desired):
        argv = adapt_argv(self.caddy_binary, self.caddyfile)
        cwd = os.path.dirname(os.path.abspath(self.caddyfile))
        rc, out, err = self.run_command(argv, cwd=cwd)
        if rc != 0:
            raise SnippetError("`%s` exited with %s: %s" % (" ".join(argv), rc, _tail(err or out)))
        try:
            config = json.loads(out)
        except ValueError as exc:
            raise SnippetError("`%s` printed no JSON config (%s): %s" % (" ".join(argv), exc, _tail(out)))
        return check_adapted(config, selector, live_path, desired)

    def rollback(self):
        """Undo ``apply``'s write, if any; a sentence saying what was done."""
        if not self.written:
            return "snippet %s was left as it was" % self.shown
        try:
            restore(self.path, self.old)
        except SnippetError as exc:
            return "restoring the previous content of snippet %s failed too: %s" % (self.shown, exc)
        self.written = False
        if self.old is None:
            return "snippet %s was removed again (it did not exist before)" % self.shown
        return "snippet %s got back its previous content" % self.shown

    def diff(self):
        return dict(before_header=self.shown if self.old is not None else "%s (absent)" % self.shown,
                    after_header=self.shown,
                    before=(self.old or b"").decode("utf-8", "replace"),
                    after=(self.new or b"").decode("utf-8", "replace"))


def _tail(text):
    text = (text or "").strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]

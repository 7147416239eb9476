# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start or stop one color project of a blue-green stack (see _blue_green.py for the model)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import (
    BlueGreenError,
    color_compose_path,
    color_dir,
    color_model,
    color_project,
    dial,
    load_state,
    model_bytes,
    networks_needed,
    volumes_needed,
)
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError, service_of
from ansible_collections.ops.rollback.plugins.module_utils._release_apply import ReleaseApplier
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError, find_release, load_ledger, save_ledger
from ansible_collections.ops.rollback.plugins.module_utils._state_files import ensure_dir, write_bytes_atomic, write_json_atomic

# Beside the color's compose file: a lock that orders starts and stops of the color, a token
# that every start renews, and the outcome of the last delayed retire.
LOCK_FILE = "lock"
START_TOKEN_FILE = "start-token"
RETIRE_FILE = "retire.json"


class ColorRunner:
    def __init__(self, module, store, services, color, network=None):
        self.module = module
        self.store = store
        self.stack = store.stack
        self.services = services
        self.color = color
        self.network = network
        self.project = color_project(self.stack, color)
        self.dir = color_dir(store.state_dir, self.stack, color)
        self.compose_path = color_compose_path(store.state_dir, self.stack, color)
        self.cli = DockerCli(module, self.dir, self.project, [self.compose_path])

    @contextlib.contextmanager
    def locked(self):
        """Holds the color's lock: a start and a (delayed) stop of one color never overlap."""
        ensure_dir(os.path.dirname(self.dir))
        ensure_dir(self.dir)
        # Owner-only, like every file of the state dir.
        fd = os.open(os.path.join(self.dir, LOCK_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start_token(self):
        try:
            with open(os.path.join(self.dir, START_TOKEN_FILE), encoding="utf-8") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return ""

    def hints(self):
        """What the caller needs to verify the color and point the proxy at it."""
        return {
            "color": self.color,
            "project": self.project,
            "project_dir": self.dir,
            "files": [self.compose_path],
            "upstreams": {s["name"]: dial(s, self.color) for s in self.services},
            "base_urls": {s["name"]: "http://%s" % dial(s, self.color) for s in self.services},
        }

    def start(self, release_id, wait_timeout=120, intent=None):
        ledger = load_ledger(self.store.state_dir, self.stack)
        release = find_release(ledger, release_id)
        if release is None:
            raise ReleaseError("release %s is not in the ledger of stack %s" % (release_id, self.stack))
        resolved = self.store.stored_resolved(release)
        if not resolved.get("services"):
            raise ReleaseError("release %s has no stored resolved config (%s/resolved.json)" % (release_id, self.store.path(release_id)))
        names = [s["name"] for s in self.services]
        applier = ReleaseApplier(self.module, self.cli, self.store)
        pins = applier.pins(release, only=names)
        images = {n: pins.get(n) or release["services"][n]["image"] or release["services"][n]["image_id"]
                  for n in names if n in release["services"]}
        network = self.network or ((resolved.get("networks") or {}).get("default") or {}).get("name") or "%s_default" % self.stack
        model = color_model(resolved, self.services, self.color, network, images)
        for name in networks_needed(model):
            rc, _out, _err = self.store.cli.run("Looking up network %s" % name, ["network", "inspect", name], check=False)
            if rc != 0:
                raise BlueGreenError("network %s does not exist: start the shared project %s (its stateful services) first, "
                                     "or name an existing network" % (name, self.stack))
        data = model_bytes(model)
        try:
            with open(self.compose_path, "rb") as handle:
                same_file = handle.read() == data
        except FileNotFoundError:
            same_file = False
        running = applier.running()
        stale = sorted(n for n in names if (running.get(n) or (None, None))[1] != release["services"][n]["image_id"])
        result = dict(self.hints(), changed=not same_file or bool(stale), release_id=release_id, pinned=pins,
                      services_to_start=stale, compose_up_s=0.0)
        if self.module.check_mode:
            return result
        if intent:
            # Written before anything changes (even when this color needs no start: the switch
            # of the proxy follows), so that a run killed after the switch is resumed by the next
            # one and recorded, not taken for a stack that already runs the target.
            ledger["in_progress"] = intent
            save_ledger(self.store.state_dir, self.stack, ledger)
        with self.locked():
            # A new token, even when nothing needs starting: a delayed retire of this color that
            # was scheduled before now sees it and leaves the color running.
            write_bytes_atomic(os.path.join(self.dir, START_TOKEN_FILE), (uuid.uuid4().hex + "\n").encode("ascii"))
            if not result["changed"]:
                return result
            self.ensure_volumes(model)
            # The resolved config holds the .env's values: owner-only, like the .env itself.
            write_bytes_atomic(self.compose_path, data, mode=0o600)
            started = time.monotonic()
            self.cli.compose("Starting release %s in color project %s" % (release_id, self.project),
                             ["up", "--detach", "--wait", "--wait-timeout", str(wait_timeout), "--remove-orphans"])
            result["compose_up_s"] = round(time.monotonic() - started, 2)
        return result

    def ensure_volumes(self, model):
        """Create the named volumes the color uses that do not exist yet, labelled as the
        shared project's (as Compose would label them), so that neither color owns them and
        the shared project accepts them."""
        for key, name in volumes_needed(model):
            rc, _out, _err = self.store.cli.run("Looking up volume %s" % name, ["volume", "inspect", name], check=False)
            if rc != 0:
                self.store.cli.run("Creating volume %s" % name,
                                   ["volume", "create", "--label", "com.docker.compose.project=%s" % self.stack,
                                    "--label", "com.docker.compose.volume=%s" % key, name])

    def stop(self):
        if self.module.check_mode:
            return self._stop()
        with self.locked():
            return self._stop()

    def _stop(self):
        before = self.cli.project_containers()
        result = dict(self.hints(), changed=bool(before), stopped=sorted({service_of(c) for c in before} - {None}))
        if before and not self.module.check_mode:
            # By project name alone: the containers' labels say what to remove, even when the
            # color's compose file is gone. Volumes stay: they are the shared project's.
            self.store.cli.run("Stopping color project %s" % self.project,
                               ["compose", "--project-name", self.project, "down", "--remove-orphans"])
        return result

    def retire(self, delay):
        """Stops the color after `delay` seconds, unless it was started again meanwhile (a
        revert or a later switch renewed its start token) or is the active color again. Run
        in the background (async) by the role; the outcome is kept in the color's retire.json."""
        token = self.start_token()
        if self.module.check_mode:
            return dict(self._stop(), retire="would stop after %d s" % delay)
        time.sleep(delay)
        with self.locked():
            if self.start_token() != token:
                result = dict(self.hints(), changed=False, stopped=[], retire="skipped: the color was started again")
            elif load_state(self.store.state_dir, self.stack).get("active") == self.color:
                result = dict(self.hints(), changed=False, stopped=[], retire="skipped: the color is the active one")
            else:
                try:
                    result = dict(self._stop(), retire="stopped")
                except DockerCliError as exc:
                    self._note_retire("failed: %s" % exc, [])
                    raise
        self._note_retire(result["retire"], result["stopped"])
        return result

    def _note_retire(self, outcome, stopped):
        # Nobody waits for a background retire: its outcome is kept for the operator.
        write_json_atomic(os.path.join(self.dir, RETIRE_FILE), {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "outcome": outcome, "stopped": stopped})

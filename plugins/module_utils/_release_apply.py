# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Put a recorded release in place and start it: the execute step of a recreate rollback,
and the way back of the emergency recovery.

Images are pinned: a service whose image reference no longer resolves to the recorded image
ID (a moved tag) runs from the release's keep tag instead, through a generated override
file. Services whose image reference still resolves correctly are not pinned, so Compose
recreates only the services whose config really changes and the outage stays short.
"""

from __future__ import annotations

import os
import time

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import COMPOSE_SERVICE_LABEL, DockerCli
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    DEFAULT_COMPOSE_FILES,
    ENV_FILE,
    OVERRIDE_FILES,
    ReleaseError,
    find_release,
    keep_tag,
    load_ledger,
    save_ledger,
    stack_dir,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import child_path
from ansible_collections.ops.rollback.plugins.module_utils._state_files import write_bytes_atomic, write_json_atomic

# Files that change what Compose runs when they merely exist in the project directory.
_IMPLICIT_FILES = set(DEFAULT_COMPOSE_FILES) | set(OVERRIDE_FILES) | {ENV_FILE}


def file_changes(project_dir, wanted):
    """(names to write, names to remove) to make project_dir hold exactly the release's files.
    Only files Compose picks up on its own are removed; anything else is left alone."""
    writes = []
    for name, data in sorted(wanted.items()):
        path = os.path.join(project_dir, name)
        try:
            with open(path, "rb") as handle:
                if handle.read() == data:
                    continue
        except FileNotFoundError:
            pass
        writes.append(name)
    removes = sorted(n for n in _IMPLICIT_FILES if n not in wanted and os.path.isfile(os.path.join(project_dir, n)))
    return writes, removes


class ReleaseApplier:
    def __init__(self, module, cli, store):
        self.module = module
        self.cli = cli
        self.store = store

    def running(self):
        """Service -> (container ID, image ID) of the project's running containers."""
        found = {}
        for container in self.cli.project_containers():
            if not (container.get("State") or {}).get("Running"):
                continue
            service = (container.get("Config", {}).get("Labels") or {}).get(COMPOSE_SERVICE_LABEL)
            found.setdefault(service, (container["Id"], container.get("Image")))
        return found

    def pins(self, release, only=None):
        """Service -> keep tag, for the services (all, or those in only) whose tag moved."""
        pins = {}
        for name, svc in sorted(release["services"].items()):
            if only is not None and name not in only:
                continue
            ref = svc.get("image")
            if ref and self.store.image_id(ref) == svc["image_id"]:
                continue
            tag = keep_tag(self.store.stack, name, release["id"])
            if self.store.image_id(tag) != svc["image_id"]:
                raise ReleaseError("service %s: neither %s nor the keep tag %s points at the recorded image %s"
                                   % (name, ref, tag, svc["image_id"]))
            pins[name] = tag
        return pins

    def apply(self, project_dir, release_id, intent=None, wait_timeout=120):
        ledger = load_ledger(self.store.state_dir, self.store.stack)
        release = find_release(ledger, release_id)
        if release is None:
            raise ReleaseError("release %s is not in the ledger of stack %s" % (release_id, self.store.stack))
        wanted = self.store.stored_files(release)
        writes, removes = file_changes(project_dir, wanted)
        pins = self.pins(release)
        before = self.running()
        mismatched = sorted(name for name, svc in release["services"].items()
                            if (before.get(name) or (None, None))[1] != svc["image_id"])
        result = {
            "changed": bool(writes or removes or mismatched),
            "release_id": release_id,
            "files_written": writes,
            "files_removed": removes,
            "pinned": pins,
            "services_to_update": mismatched,
            "recreated": [],
            "compose_up_s": 0.0,
        }
        if not result["changed"] or self.module.check_mode:
            return result
        if intent:
            # Written before anything changes, so a killed run is resumed, not misread.
            ledger["in_progress"] = intent
            save_ledger(self.store.state_dir, self.store.stack, ledger)
        for name in writes:
            write_bytes_atomic(child_path(project_dir, name), wanted[name], mode=0o600 if name == ENV_FILE else 0o644)
        for name in removes:
            os.unlink(os.path.join(project_dir, name))
        files = list(release.get("compose_files") or [])
        if pins:
            override = os.path.join(stack_dir(self.store.state_dir, self.store.stack), "pins.override.yml")
            write_json_atomic(override, {"services": {name: {"image": tag} for name, tag in pins.items()}})
            files.append(override)
        cli = DockerCli(self.module, project_dir, self.store.stack, files)
        started = time.monotonic()
        cli.compose("Starting release %s of stack %s" % (release_id, self.store.stack),
                    ["up", "--detach", "--wait", "--wait-timeout", str(wait_timeout), "--remove-orphans"])
        result["compose_up_s"] = round(time.monotonic() - started, 2)
        after = self.running()
        result["recreated"] = sorted(s for s, (cid, _img) in after.items() if (before.get(s) or (None, None))[0] != cid)
        return result

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Steps 1-3 of every rollback: choose the target, validate it, work out the impact.

Nothing here changes the stack. The only write is recording the running state as a release
when it was never recorded (skipped in check mode), so that the rollback has a way back.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import COLORS, color_project
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.ops.rollback.plugins.module_utils._impact import (
    config_diff,
    env_changes,
    estimate_downtime,
    image_changes,
    migration_changes,
    parse_dotenv,
    render,
    secret_values,
)
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    ENV_FILE,
    ReleaseError,
    add_or_touch,
    find_release,
    load_ledger,
    release_entry_view,
    save_ledger,
    select_target,
)
from ansible_collections.ops.rollback.plugins.module_utils._history import read_history


def published_ports(resolved):
    """(service, host_ip, port, protocol) of every published port of a resolved config."""
    ports = []
    for name, spec in sorted((resolved.get("services") or {}).items()):
        for port in spec.get("ports") or []:
            published = port.get("published")
            if published in (None, ""):
                continue
            first = str(published).split("-", 1)[0]
            ports.append((name, port.get("host_ip") or "0.0.0.0", int(first), port.get("protocol") or "tcp"))
    return ports


def project_host_ports(containers):
    """Host ports that the project's own containers publish now."""
    used = set()
    for container in containers:
        for bindings in ((container.get("NetworkSettings") or {}).get("Ports") or {}).values():
            for binding in bindings or []:
                if binding.get("HostPort"):
                    used.add(int(binding["HostPort"]))
    return used


def port_is_free(host_ip, port, protocol):
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


class RollbackPlanner:
    """Plans a rollback of one stack; see plan()."""

    def __init__(self, module, cli, store):
        self.module = module
        self.cli = cli
        self.store = store

    def current_release(self, ledger, project_dir, files, extra_globs, migrations_glob):
        """The running state as a ledger entry, recorded first when it is new. Returns
        (entry, recorded) where recorded says whether the ledger had to change."""
        in_progress = ledger.get("in_progress")
        if in_progress and find_release(ledger, in_progress.get("from")):
            # An earlier run was interrupted after it began to execute: resume from its origin.
            return find_release(ledger, in_progress["from"]), False
        snap = self.store.snapshot(project_dir, files, extra_globs, migrations_glob)
        before = find_release(ledger, snap["id"])
        if before is not None and ledger.get("current") == snap["id"]:
            return before, False
        entry = add_or_touch(ledger, snap, commit=self.store.git_commit(project_dir))
        if not self.module.check_mode:
            if not self.store.is_stored(snap["id"], snap["files"]):
                self.store.store(snap)
            self.store.apply_keep_tags(entry, self.store.missing_keep_tags(entry))
            save_ledger(self.store.state_dir, self.store.stack, ledger)
        return entry, True

    def choose(self, ledger, target):
        in_progress = ledger.get("in_progress")
        if in_progress and target in ("previous", in_progress.get("to")) and find_release(ledger, in_progress.get("to")):
            return find_release(ledger, in_progress["to"])
        return select_target(ledger, target)

    def validate(self, current, target, project_dir, strategy="recreate"):
        """Problems that make the target unusable; an empty list means it can be used."""
        problems = []
        if not self.store.is_stored(target["id"], target["files"]):
            problems.append("the files of release %s are missing from %s" % (target["id"], self.store.path(target["id"])))
            return problems
        missing = [(name, svc) for name, svc in sorted(target["services"].items())
                   if self.store.image_id(svc["image_id"]) is None]
        for name, svc in missing:
            digests = ", ".join(svc.get("repo_digests") or []) or "no repo digest recorded"
            problems.append("image of service %s is not present: %s (%s, was %s)" % (
                name, svc["image_id"], digests, svc.get("image")))
        problems.extend(self.config_problems(target, project_dir))
        if not problems:
            problems.extend(self.port_problems(target, strategy))
        return problems

    def config_problems(self, target, project_dir):
        """Validate the target's compose files with `docker compose config` in a scratch copy."""
        scratch = tempfile.mkdtemp(prefix="ops-rollback-validate-")
        try:
            os.chmod(scratch, 0o700)
            for name, data in self.store.stored_files(target).items():
                path = os.path.join(scratch, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as handle:
                    handle.write(data)
            cli = DockerCli(self.module, scratch, self.store.stack, target.get("compose_files") or [])
            try:
                cli.compose_config()
            except DockerCliError as exc:
                # The message quotes Compose; it names files and keys, never .env values.
                return ["the compose config of release %s is not valid: %s" % (target["id"], exc.stderr)]
            except ValueError as exc:
                return ["the compose config of release %s could not be read: %s" % (target["id"], exc)]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return []

    def held_ports(self, strategy):
        """Host ports that the stack's own containers hold: the project's, and under blue_green
        also the color projects' (a switchable service's port in the shared config is the one a
        color serves on, never another process's)."""
        ours = project_host_ports(self.cli.project_containers())
        if strategy == "blue_green":
            for color in COLORS:
                ours |= project_host_ports(self.project_cli(color_project(self.store.stack, color)).project_containers())
        return ours

    def project_cli(self, project):
        return DockerCli(self.module, None, project)

    def port_problems(self, target, strategy="recreate"):
        ours = self.held_ports(strategy)
        problems = []
        for service, host_ip, port, protocol in published_ports(self.store.stored_resolved(target)):
            if port in ours:
                continue
            if not port_is_free(host_ip, port, protocol):
                problems.append("port %s:%s/%s of service %s is taken by another process" % (host_ip, port, protocol, service))
        return problems

    def impact(self, ledger, current, target, strategy):
        cur_files = self.store.stored_files(current) if self.store.is_stored(current["id"], current["files"]) else {}
        tgt_files = self.store.stored_files(target)
        cur_env = parse_dotenv(cur_files.get(ENV_FILE, b""))
        tgt_env = parse_dotenv(tgt_files.get(ENV_FILE, b""))
        secrets = secret_values(cur_env, tgt_env)
        impact = {
            "stack": self.store.stack,
            "current": {"id": current["id"], "version": current.get("version")},
            "target": {"id": target["id"], "version": target.get("version")},
            "images": image_changes(current["services"], target["services"]),
            "env": env_changes(cur_env, tgt_env),
            "migrations": migration_changes(current.get("migrations"), target.get("migrations")),
            "downtime": estimate_downtime(read_history(self.store.state_dir, self.store.stack), strategy),
            "config_diff": config_diff(self.store.stored_resolved(current), self.store.stored_resolved(target), secrets),
        }
        impact["changed_services"] = [c["service"] for c in impact["images"] if c["change"] != "unchanged"]
        return impact

    def plan(self, project_dir, files, target, strategy, extra_globs=(), migrations_glob=None):
        if not os.path.isdir(project_dir):
            raise ReleaseError("project_dir %s does not exist" % project_dir)
        ledger = load_ledger(self.store.state_dir, self.store.stack)
        current, recorded = self.current_release(ledger, project_dir, files, extra_globs, migrations_glob)
        chosen = self.choose(ledger, target)
        result = {
            "changed": recorded,
            "recorded_current": recorded,
            "resumed": bool(ledger.get("in_progress")),
            "current": release_entry_view(ledger, current),
            "target": release_entry_view(ledger, chosen),
            "noop": chosen["id"] == current["id"],
        }
        if result["noop"]:
            result["impact_text"] = ["Stack %s already runs release %s: nothing to roll back." % (self.store.stack, current["id"])]
            result["problems"] = []
            return result
        result["problems"] = self.validate(current, chosen, project_dir, strategy)
        if result["problems"]:
            result["impact_text"] = ["Rollback of stack %s: %s -> %s can't be done:" % (self.store.stack, current["id"], chosen["id"])]
            result["impact_text"] += ["  - " + problem for problem in result["problems"]]
            return result
        result["impact"] = self.impact(ledger, current, chosen, strategy)
        result["impact_text"] = render(result["impact"])
        return result

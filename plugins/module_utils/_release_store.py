# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Releases on a host: snapshots of the running stack, their files, their keep tags.

The ledger logic is in _releases.py; this adds what needs Docker or the project directory.
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import color_project, load_state
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError, daemon_unreachable, service_of
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    ReleaseError,
    add_or_touch,
    compose_file_names,
    find_release,
    keep_tag,
    load_ledger,
    migration_checksums,
    prune_candidates,
    read_files,
    release_dir,
    release_entry_view,
    release_file_names,
    release_id_for,
    save_ledger,
    set_status,
)
from ansible_collections.ops.rollback.plugins.module_utils._state_files import read_json, write_bytes_atomic, write_json_atomic
from ansible_collections.ops.rollback.plugins.module_utils._names import check_name, child_path


class ReleaseStore:
    """The releases of one stack on the managed host."""

    def __init__(self, module, cli, state_dir, stack):
        self.module = module
        self.cli = cli
        self.state_dir = state_dir
        self.stack = check_name(stack, "project_name")

    # -- reading the running stack ---------------------------------------------------------
    def running_services(self, resolved):
        """Image reference, image ID and digests of each service of the resolved config: the
        image the service's running container uses, or what its reference resolves to locally."""
        by_service = {}
        for container in self.cli.project_containers():
            labels = container.get("Config", {}).get("Labels") or {}
            service = labels.get("com.docker.compose.service")
            if service and container.get("State", {}).get("Running"):
                by_service.setdefault(service, container.get("Image"))
        by_service.update(self.active_color_images(resolved))
        services = {}
        for name, spec in sorted((resolved.get("services") or {}).items()):
            ref = spec.get("image")
            image_id = by_service.get(name) or (self.image_id(ref) if ref else None)
            if image_id is None:
                raise ReleaseError("service %s: image %s is not present locally and no container runs it" % (name, ref))
            info = self.cli.inspect([image_id], kind="image")[0]
            services[name] = {"image": ref, "image_id": image_id, "repo_digests": info.get("RepoDigests") or []}
        return services

    def active_color_images(self, resolved):
        """Service -> image ID of a blue-green stack's active color, for the services whose
        container runs the very reference the project directory names. A color started from
        another reference runs another release (the project directory already describes the
        next one, recorded before it is switched to): its reference is resolved instead."""
        active = load_state(self.state_dir, self.stack).get("active")
        if not active:
            return {}
        found = {}
        for container in DockerCli(self.module, None, color_project(self.stack, active)).project_containers():
            service = service_of(container)
            spec = (resolved.get("services") or {}).get(service) or {}
            if (container.get("State", {}).get("Running") and spec.get("image")
                    and container.get("Config", {}).get("Image") == spec["image"]):
                found.setdefault(service, container.get("Image"))
        return found

    def image_id(self, ref):
        """The local image ID a reference resolves to, or None when the image is absent."""
        what = "Looking up image %s" % ref
        argv = ["image", "inspect", "--format", "{{.Id}}", ref]
        rc, out, err = self.cli.run(what, argv, check=False)
        if rc != 0 and daemon_unreachable(err or out):
            # Not "the image is absent": say that Docker did not answer.
            raise DockerCliError(what, [self.cli.docker] + argv, rc, err or out)
        return out.strip() if rc == 0 else None

    def snapshot(self, project_dir, files, extra_globs=(), migrations_glob=None):
        """The project's current state as a release (nothing written)."""
        if not os.path.isdir(project_dir):
            raise ReleaseError("project_dir %s does not exist" % project_dir)
        names = release_file_names(project_dir, files, extra_globs)
        contents = read_files(project_dir, names)
        resolved = self.cli.compose_config()
        services = self.running_services(resolved)
        return {
            "id": release_id_for(contents, services),
            "services": services,
            "files": names,
            "compose_files": compose_file_names(project_dir, files),
            "migrations": migration_checksums(project_dir, migrations_glob),
            "_contents": contents,
            "_resolved": resolved,
        }

    def git_commit(self, project_dir):
        git = self.module.get_bin_path("git")
        if not git or not os.path.exists(os.path.join(project_dir, ".git")):
            return None
        rc, out, _err = self.module.run_command([git, "-C", project_dir, "rev-parse", "HEAD"])
        return out.strip() if rc == 0 else None

    # -- stored releases ---------------------------------------------------------------
    def path(self, release_id):
        return release_dir(self.state_dir, self.stack, release_id)

    def stored_files(self, release):
        return read_files(os.path.join(self.path(release["id"]), "files"), release["files"])

    def stored_resolved(self, release):
        return read_json(os.path.join(self.path(release["id"]), "resolved.json"), default={})

    def is_stored(self, release_id, names):
        base = os.path.join(self.path(release_id), "files")
        return all(os.path.isfile(child_path(base, n)) for n in names)

    def store(self, snap):
        base = self.path(snap["id"])
        for name, data in snap["_contents"].items():
            write_bytes_atomic(child_path(os.path.join(base, "files"), name), data)
        write_json_atomic(os.path.join(base, "resolved.json"), snap["_resolved"])

    def images_present(self, release):
        return all(self.image_id(svc["image_id"]) is not None for svc in release["services"].values())

    def missing_keep_tags(self, release):
        missing = []
        for name, svc in release["services"].items():
            tag = keep_tag(self.stack, name, release["id"])
            if self.image_id(tag) != svc["image_id"]:
                missing.append((tag, svc["image_id"]))
        return missing

    def apply_keep_tags(self, release, missing):
        for tag, image_id in missing:
            self.cli.run("Tagging image %s as %s" % (image_id, tag), ["image", "tag", image_id, tag])
        for name, svc in release["services"].items():
            svc["keep_tag"] = keep_tag(self.stack, name, release["id"])

    def remove(self, release):
        for name in release["services"]:
            tag = keep_tag(self.stack, name, release["id"])
            if self.image_id(tag):
                self.cli.run("Removing keep tag %s" % tag, ["image", "rm", "--no-prune", tag], check=False)
        shutil.rmtree(self.path(release["id"]), ignore_errors=True)

    # -- recording -----------------------------------------------------------------------
    def record(self, project_dir, files, version=None, status="unverified", extra_globs=(),
               migrations_glob=None, keep=5, protect=()):
        """Record the running state as the current release; returns the module result."""
        snap = self.snapshot(project_dir, files, extra_globs, migrations_glob)
        ledger = load_ledger(self.state_dir, self.stack)
        before = find_release(ledger, snap["id"])
        was_current = ledger.get("current") == snap["id"]
        old_status = before.get("status") if before else None
        entry = add_or_touch(ledger, snap, version=version, commit=self.git_commit(project_dir), status=status)
        if status == "healthy" and entry.get("status") != "healthy":
            set_status(ledger, entry["id"], "healthy")
        missing_tags = self.missing_keep_tags(entry)
        victims = prune_candidates(ledger, keep, protect=protect)
        stored = self.is_stored(snap["id"], snap["files"])
        changed = (before is None or not was_current or old_status != entry.get("status") or bool(missing_tags)
                   or bool(victims) or not stored or (version and before.get("version") is None))
        if changed and not self.module.check_mode:
            if not stored:
                self.store(snap)
            self.apply_keep_tags(entry, missing_tags)
            for victim in victims:
                self.remove(victim)
                ledger["releases"].remove(victim)
            save_ledger(self.state_dir, self.stack, ledger)
        return {
            "changed": bool(changed),
            "new": before is None,
            "release": release_entry_view(ledger, entry),
            "pruned": [v["id"] for v in victims],
            "path": self.path(snap["id"]),
        }

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backup and restore of one Compose stack: what to save, and the Docker side of it.

The pure part (which volumes and bind mounts a stack uses, which compose files to copy, which
services to stop and start, what a service's image record is) is plain functions over the
resolved compose config. ``Engine`` streams volumes through Docker without pulling anything:

* ``mountpoint``: GNU tar reads a plain ``local`` volume's mount point on the host (the
  fastest path; root on the Docker host only);
* ``api``: ``docker cp CONTAINER:/ops-rollback/volume -`` (Engine API get_archive) on a helper
  container that is created, never started, from an image the stack already has.

Restores always go through the API: ``docker cp -a - CONTAINER:/ops-rollback/`` into a new
helper, so ownership and modes come back exactly as archived.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import (
    COMPOSE_PROJECT_LABEL, DockerCliError, container_name, service_of)

HELPER_LABEL = "ops.rollback.helper"
HELPER_MOUNT = "/ops-rollback/volume"
HELPER_PARENT = "/ops-rollback/"
# Compose's own default names, in its order of preference; every one that exists is copied.
DEFAULT_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
                         "compose.override.yaml", "compose.override.yml",
                         "docker-compose.override.yaml", "docker-compose.override.yml")
ENV_FILE = ".env"
RESOLVED_CONFIG = "compose.resolved.yml"
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
VOLUME_SOURCES = ("auto", "mountpoint", "api")


# -- what a stack uses (pure) -------------------------------------------------------------
def stack_volumes(config, only=None):
    """Named volumes mounted by the stack's services, by compose key.

    Returns ``[{key, name, external, mounts: [{service, target}]}]`` sorted by key. ``only``
    limits to these keys or full names; an unknown one is a BackupError.
    """
    top = config.get("volumes") or {}
    found = {}
    for service, spec in sorted((config.get("services") or {}).items()):
        for mount in spec.get("volumes") or []:
            if not isinstance(mount, dict) or mount.get("type") != "volume" or not mount.get("source"):
                continue
            key = mount["source"]
            volume = top.get(key) or {}
            entry = found.setdefault(key, {"key": key, "name": volume.get("name") or key,
                                           "external": bool(volume.get("external")), "mounts": []})
            entry["mounts"].append({"service": service, "target": mount.get("target")})
    volumes = [found[key] for key in sorted(found)]
    if only:
        known = set(v["key"] for v in volumes) | set(v["name"] for v in volumes)
        unknown = [name for name in only if name not in known]
        if unknown:
            raise A.BackupError("volume(s) %s are not used by any service of the stack (it uses: %s)"
                                % (", ".join(unknown), ", ".join(sorted(v["key"] for v in volumes)) or "none"))
        volumes = [v for v in volumes if v["key"] in only or v["name"] in only]
    return volumes


def bind_key(source):
    """A file-name-safe key for a bind mount's host path: ``srv-app-uploads-1a2b3c4d``."""
    tail = "-".join(part for part in source.split("/") if part)[-80:] or "root"
    tail = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "._-" else "_" for ch in tail).lstrip("._-") or "root"
    return "%s-%s" % (tail, hashlib.sha256(source.encode("utf-8")).hexdigest()[:8])


def stack_binds(config, only=None):
    """Bind mounts of the stack's services: ``[{key, source, mounts}]`` sorted by source.

    ``only`` limits to these host paths (an unknown one is a BackupError).
    """
    found = {}
    for service, spec in sorted((config.get("services") or {}).items()):
        for mount in spec.get("volumes") or []:
            if not isinstance(mount, dict) or mount.get("type") != "bind" or not mount.get("source"):
                continue
            source = os.path.normpath(mount["source"])
            entry = found.setdefault(source, {"key": bind_key(source), "source": source, "mounts": []})
            entry["mounts"].append({"service": service, "target": mount.get("target")})
    binds = [found[source] for source in sorted(found)]
    if only:
        wanted = set(os.path.normpath(path) for path in only)
        unknown = sorted(wanted - set(found))
        if unknown:
            raise A.BackupError("bind mount(s) %s are not used by any service of the stack (it binds: %s)"
                                % (", ".join(unknown), ", ".join(sorted(found)) or "none"))
        binds = [b for b in binds if b["source"] in wanted]
    return binds


def config_file_records(project_dir, files):
    """Compose files (and .env) to copy: ``[(record_path, absolute_path)]``, existing ones only.

    ``record_path`` is relative to the project directory when the file is inside it, else
    absolute. Without ``files``, every file with one of Compose's default names is taken.
    """
    project_dir = os.path.abspath(project_dir)
    if files:
        candidates = [path if os.path.isabs(path) else os.path.join(project_dir, path) for path in files]
    else:
        candidates = [os.path.join(project_dir, name) for name in DEFAULT_COMPOSE_FILES]
    candidates.append(os.path.join(project_dir, ENV_FILE))
    records, seen = [], set()
    for path in candidates:
        path = os.path.normpath(path)
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        rel = os.path.relpath(path, project_dir)
        records.append((path if rel.startswith("..") else rel, path))
    return records


def stored_config_name(record_path, index):
    """Where a config copy goes in the backup: ``config/<relative path>`` or ``config/external/...``."""
    if os.path.isabs(record_path):
        name = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "._-" else "_" for ch in os.path.basename(record_path))
        return "config/external/%d-%s" % (index, name.lstrip(".") or "file")
    return "config/" + record_path


def running_services(config, containers):
    """Services (in config order) with at least one running container."""
    running = set(service_of(c) for c in containers if (c.get("State") or {}).get("Running"))
    return [name for name in (config.get("services") or {}) if name in running]


def services_to_stop(stop_services, stop_all, running, known):
    """The running services to stop for the archiving, in config order."""
    if stop_all:
        return list(running)
    unknown = [name for name in stop_services if name not in known]
    if unknown:
        raise A.BackupError("stop_services names unknown service(s) %s (the stack has: %s)"
                            % (", ".join(unknown), ", ".join(known)))
    return [name for name in running if name in stop_services]


def service_records(config, containers, images):
    """Per service: the image reference, image ID, repo tags and digests, and the container state.

    ``images`` maps image IDs and references to ``docker image inspect`` data.
    """
    records = {}
    for service, spec in (config.get("services") or {}).items():
        mine = [c for c in containers if service_of(c) == service]
        mine.sort(key=lambda c: not (c.get("State") or {}).get("Running"))
        first = mine[0] if mine else None
        ref = spec.get("image")
        image_id = first.get("Image") if first else (images.get(ref) or {}).get("Id")
        image = images.get(image_id) or images.get(ref) or {}
        state = (first or {}).get("State") or {}
        records[service] = {
            "image": ref,
            "image_id": image_id,
            "repo_tags": image.get("RepoTags") or [],
            "repo_digests": image.get("RepoDigests") or [],
            "state": state.get("Status", "missing") if first else "missing",
            "health": (state.get("Health") or {}).get("Status"),
            "container": container_name(first) if first else None,
            "containers": len(mine),
        }
    return records


def volume_method(requested, volume, is_root, tar_is_gnu):
    """``mountpoint`` or ``api`` for one named volume (see the module doc of ``volume_source``)."""
    plain_local = (volume.get("Driver") == "local" and not volume.get("Options")
                   and os.path.basename(volume.get("Mountpoint") or "") == "_data")
    if requested == "api":
        return "api"
    usable = plain_local and is_root and tar_is_gnu and os.path.isdir(volume.get("Mountpoint") or "")
    if requested == "mountpoint":
        if not usable:
            raise A.BackupError("volume_source=mountpoint needs a plain local volume whose mount point this host "
                                "reads as root with GNU tar; volume %s (driver %s) doesn't qualify"
                                % (volume.get("Name"), volume.get("Driver")))
        return "mountpoint"
    return "mountpoint" if usable else "api"


def restore_start_services(config_services, running_before, manifest_services):
    """Services to start after a restore: running before it, or running when the backup was taken."""
    at_backup = set(name for name, rec in (manifest_services or {}).items() if rec.get("state") == "running")
    wanted = set(running_before) | at_backup
    return [name for name in config_services if name in wanted]


# -- the Docker side ----------------------------------------------------------------------
class _NullWriter:
    def write(self, data):
        return len(data)

    def flush(self):
        return None


class Stream:
    """A child process we read from or write to, with its stderr kept in a temporary file."""

    def __init__(self, argv, what, write=False):
        self.what = what
        self.argv = argv
        self.errors = tempfile.TemporaryFile()
        # run_command buffers the whole output in memory: a volume's archive must stream instead.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if write else subprocess.DEVNULL,  # pylint: disable=ansible-bad-function
                                     stdout=subprocess.DEVNULL if write else subprocess.PIPE,
                                     stderr=self.errors, bufsize=0)
        pipe = self.proc.stdin if write else self.proc.stdout
        try:
            fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only costs speed
        self.pipe = pipe

    def finish(self, ok_codes=(0,), warn_codes=()):
        """Close our end, wait; returns a warning text or None, raises BackupError on failure."""
        self.pipe.close()
        rc = self.proc.wait()
        err = self.stderr()
        if rc in ok_codes:
            return None
        if rc in warn_codes:
            return "%s: exit code %d: %s" % (self.what, rc, err)
        raise A.BackupError("%s failed (rc=%s, command: %s): %s" % (self.what, rc, " ".join(self.argv), err))

    def abort(self):
        with contextlib.suppress(OSError):
            self.pipe.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        return self.stderr()

    def stderr(self):
        self.errors.seek(0)
        text = self.errors.read().decode("utf-8", "replace").strip()
        self.errors.close()
        return text[-2000:]


class Engine:
    """Docker calls a backup or restore needs beyond ``DockerCli``, streams included."""

    def __init__(self, module, cli):
        self.module = module
        self.cli = cli
        self.docker = cli.docker
        self.tar = module.get_bin_path("tar")
        self._gnu_tar = None

    # -- inspection ------------------------------------------------------------------
    def volume(self, name):
        rc, out, err = self.cli.run("Inspecting volume %s" % name, ["volume", "inspect", name], check=False)
        if rc != 0:
            if "no such volume" in (err or out).lower():
                return None
            raise A.BackupError("Inspecting volume %s failed: %s" % (name, (err or out).strip()))
        return json.loads(out)[0]

    def images(self, refs):
        """``docker image inspect`` data of those refs/IDs that exist here, by ref and by ID."""
        refs = sorted(set(ref for ref in refs if ref))
        found = {}
        if not refs:
            return found
        _rc, out, _err = self.cli.run("Inspecting images %s" % ", ".join(refs), ["image", "inspect"] + refs, check=False)
        try:
            data = json.loads(out or "[]")
        except ValueError:
            data = []
        for image in data:
            found[image["Id"]] = image
            for ref in refs:
                if ref == image["Id"] or ref in (image.get("RepoTags") or []) or image["Id"].startswith("sha256:" + ref):
                    found[ref] = image
        return found

    def volume_users(self, name):
        """IDs of every container (any state) that mounts a volume."""
        _rc, out, _err = self.cli.run("Listing the containers that use volume %s" % name,
                                      ["ps", "--all", "--quiet", "--no-trunc", "--filter", "volume=%s" % name])
        return out.split()

    def gnu_tar(self):
        if self._gnu_tar is None:
            self._gnu_tar = False
            if self.tar:
                rc, out, _err = self.module.run_command([self.tar, "--version"])
                self._gnu_tar = rc == 0 and "GNU tar" in out
        return self._gnu_tar

    # -- helper containers -----------------------------------------------------------
    def create_helper(self, image, source, kind, read_only):
        """A container that is created and never started, with ``source`` at /ops-rollback/volume."""
        for ch in ",\"'\n":
            if ch in source:
                raise A.BackupError("%s %r contains %r, which docker's --mount can't take" % (kind, source, ch))
        mount = "type=%s,source=%s,target=%s" % ("bind" if kind == "bind" else "volume", source, HELPER_MOUNT)
        if kind != "bind":
            mount += ",volume-nocopy"
        if read_only:
            mount += ",readonly"
        project = self.cli.project_name or "none"
        name = "%s-ops-rollback-helper-%s" % (project, uuid.uuid4().hex[:8])
        _rc, out, _err = self.cli.run(
            "Creating the helper container for %s %s" % (kind, source),
            ["create", "--name", name, "--label", "%s=%s" % (HELPER_LABEL, project), "--network", "none",
             "--mount", mount, "--entrypoint", "", image, "/ops-rollback-helper-never-started"])
        return out.strip().splitlines()[-1]

    def remove_helper(self, cid):
        self.cli.run("Removing helper container %s" % cid, ["rm", "--force", "--volumes", cid], check=False)

    @contextlib.contextmanager
    def helper(self, image, source, kind, read_only):
        cid = self.create_helper(image, source, kind, read_only)
        try:
            yield cid
        finally:
            self.remove_helper(cid)

    # -- streams ---------------------------------------------------------------------
    def archive(self, target, argv, what, compression, level, recipients, warn_codes=()):
        """Run ``argv``, compress (encrypt) its stdout into ``target``. Returns (entry data, warning)."""
        started = time.monotonic()
        stream = Stream(argv, what)
        with A.open_private(target) as handle:
            writer = A.HashingWriter(handle)
            try:
                raw = A.compress_stream(stream.pipe, writer, compression, level, recipients)
            except BaseException as exc:
                err = stream.abort()
                if isinstance(exc, OSError):
                    raise A.BackupError("%s: writing %s failed: %s%s" % (what, target, exc, (" (%s)" % err) if err else ""))
                raise
            warning = stream.finish(warn_codes=warn_codes)
            seconds = time.monotonic() - started
            os.fsync(handle.fileno())
        return {"size": writer.size, "sha256": writer.hexdigest(), "raw_size": raw,
                "seconds": round(seconds, 3), "fsync_s": round(time.monotonic() - started - seconds, 3),
                "mb_per_s": round(raw / 1048576.0 / seconds, 1) if seconds > 0 else None}, warning

    def archive_volume(self, target, volume, method, image, compression, level, recipients):
        if method == "mountpoint":
            mountpoint = volume["Mountpoint"]
            argv = [self.tar, "--numeric-owner", "-C", os.path.dirname(mountpoint),
                    "--transform", "s,^_data,volume,rhS", "-cf", "-", "_data"]
            # GNU tar exits 1 when a file changed while it was read: a live service; kept as a warning.
            return self.archive(target, argv, "Archiving volume %s from its mount point" % volume["Name"],
                                compression, level, recipients, warn_codes=(1,))
        with self.helper(image, volume["Name"], "volume", True) as cid:
            return self.archive(target, [self.docker, "cp", "%s:%s" % (cid, HELPER_MOUNT), "-"],
                                "Archiving volume %s through docker cp" % volume["Name"], compression, level, recipients)

    def archive_bind(self, target, source, image, compression, level, recipients):
        with self.helper(image, source, "bind", True) as cid:
            return self.archive(target, [self.docker, "cp", "%s:%s" % (cid, HELPER_MOUNT), "-"],
                                "Archiving bind mount %s through docker cp" % source, compression, level, recipients)

    def dump(self, target, container_id, hook, compression, level, recipients):
        argv = [self.docker, "exec"]
        if hook.get("user"):
            argv += ["--user", hook["user"]]
        argv += [container_id] + list(hook["argv"])
        return self.archive(target, argv, "Hook %s (%s in service %s)" % (hook["name"], " ".join(hook["argv"]), hook["service"]),
                            compression, level, recipients)

    def feed(self, argv, what, source_path, compression, identities):
        """Decrypt and decompress ``source_path`` into the stdin of ``argv``."""
        stream = Stream(argv, what, write=True)
        try:
            with open(source_path, "rb") as handle:
                A.decompress_stream(handle, A.FullWriter(stream.pipe), compression, identities)
        except BrokenPipeError:
            raise A.BackupError("%s failed: the command stopped reading: %s" % (what, stream.abort()))
        except BaseException:
            stream.abort()
            raise
        stream.finish()

    def fill(self, source_path, target, kind, image, compression, identities):
        with self.helper(image, target, kind, False) as cid:
            self.feed([self.docker, "cp", "--archive", "-", "%s:%s" % (cid, HELPER_PARENT)],
                      "Filling %s %s through docker cp" % (kind, target), source_path, compression, identities)

    def feed_exec(self, container_id, hook, source_path, compression, identities):
        argv = [self.docker, "exec", "--interactive"]
        if hook.get("user"):
            argv += ["--user", hook["user"]]
        argv += [container_id] + list(hook["argv"])
        self.feed(argv, "Restore hook %s (%s in service %s)" % (hook["name"], " ".join(hook["argv"]), hook["service"]),
                  source_path, compression, identities)


# -- the backup ---------------------------------------------------------------------------
def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def pick_helper_image(engine, configured, candidates):
    """The image to create helper containers from: ``configured``, else the first candidate here."""
    if configured:
        if not engine.images([configured]).get(configured):
            raise A.BackupError("helper_image %s is not on this host, and nothing can be pulled: build or load it, "
                                "or leave helper_image empty to use an image of the stack" % configured)
        return configured
    found = engine.images(candidates)
    for ref in candidates:
        if ref and found.get(ref):
            return found[ref]["Id"]
    names = ", ".join(sorted(set(c for c in candidates if c))) or "none"
    raise A.BackupError("none of the stack's images (%s) is on this host to create the helper container from; "
                        "set helper_image to a local image" % names)


class BackupRun:
    """One backup of a stack into ``<root>/<stack>/<backup_id>/`` (see compose_backup)."""

    def __init__(self, module, cli, engine, opts):
        self.module = module
        self.cli = cli
        self.engine = engine
        self.opts = opts
        self.warnings = []
        self.timings = {}

    # -- planning (read-only) --------------------------------------------------------
    def plan(self, config=None, containers=None):
        o = self.opts
        A.check_name(o["stack"], "stack")
        if o.get("backup_id"):
            A.check_name(o["backup_id"], "backup_id")
        if o["compression"] not in A.COMPRESSION_SUFFIX:
            raise A.BackupError("compression %r is not one of zstd, gzip" % o["compression"])
        A.require_libs(o["compression"], bool(o["age_recipients"]))
        recipients = A.parse_recipients(o["age_recipients"]) if o["age_recipients"] else []
        if not os.path.isdir(o["project_dir"]):
            raise A.BackupError("project_dir %s does not exist on this host" % o["project_dir"])
        if config is None:
            config = self.cli.compose_config()
        if containers is None:
            containers = self.cli.project_containers()
        services = list((config.get("services") or {}).keys())
        running = running_services(config, containers)
        volumes = []
        if o["volumes"]:
            for spec in stack_volumes(config, o.get("volume_names")):
                data = self.engine.volume(spec["name"])
                if data is None:
                    self.warnings.append("volume %s (%s) does not exist yet: nothing to back up" % (spec["key"], spec["name"]))
                    continue
                spec = dict(spec, data=data,
                            method=volume_method(o["volume_source"], data, os.geteuid() == 0, self.engine.gnu_tar()))
                volumes.append(spec)
        binds = []
        if o["bind_mounts"]:
            for spec in stack_binds(config, o.get("bind_mount_paths")):
                if not os.path.isdir(spec["source"]):
                    self.warnings.append("bind mount %s is not a directory on this host: skipped" % spec["source"])
                    continue
                binds.append(spec)
        hooks = []
        for hook in o.get("hooks") or []:
            A.check_name(hook["name"], "hooks[].name")
            output = hook.get("output") or "%s.out" % hook["name"]
            A.check_name(output, "hooks[%s].output" % hook["name"])
            if hook["service"] not in running:
                raise A.BackupError("hook %s runs in service %s, which has no running container (running: %s)"
                                    % (hook["name"], hook["service"], ", ".join(running) or "none"))
            container = next(c for c in containers if service_of(c) == hook["service"] and (c.get("State") or {}).get("Running"))
            hooks.append(dict(hook, output=output, container_id=container["Id"]))
        names = [h["output"] for h in hooks]
        if len(set(names)) != len(names):
            raise A.BackupError("two hooks write the same output file: %s" % ", ".join(sorted(names)))
        stop = services_to_stop(o.get("stop_services") or [], o.get("stop_all_services"), running, services)
        helper_image = None
        if any(v["method"] == "api" for v in volumes) or binds:
            candidates = [c.get("Image") for c in containers]
            candidates += [spec.get("image") for spec in (config.get("services") or {}).values()]
            candidates += o.get("extra_image_candidates") or []
            helper_image = pick_helper_image(self.engine, o.get("helper_image"), candidates)
        config_files = config_file_records(o["project_dir"], o.get("files")) if o["config_files"] else []
        return {"config": config, "containers": containers, "services": services, "running": running,
                "volumes": volumes, "binds": binds, "hooks": hooks, "stop": stop, "helper_image": helper_image,
                "config_files": config_files, "recipients": recipients}

    @staticmethod
    def describe(plan):
        """What check mode reports: the backup as it would be taken."""
        return {
            "volumes": [{"key": v["key"], "name": v["name"], "method": v["method"]} for v in plan["volumes"]],
            "bind_mounts": [b["source"] for b in plan["binds"]],
            "hooks": [h["name"] for h in plan["hooks"]],
            "config_files": [record for record, _path in plan["config_files"]],
            "stop_services": plan["stop"],
            "helper_image": plan["helper_image"],
        }

    # -- doing it -------------------------------------------------------------------
    def run(self, plan, kind="backup", restore_of=None, already_locked=False):
        """Take the backup; returns (manifest, final directory)."""
        o = self.opts
        root = o["backup_root"]
        A.ensure_private_dir(root)
        directory = A.stack_dir(root, o["stack"])
        A.ensure_private_dir(directory)
        lock = contextlib.nullcontext() if already_locked else A.stack_lock(directory)
        with lock:
            taken = set(name[:-len(A.PARTIAL_SUFFIX)] if name.endswith(A.PARTIAL_SUFFIX) else name
                        for name in os.listdir(directory))
            backup_id = o.get("backup_id") or A.new_backup_id(now_utc(), taken)
            if backup_id in taken:
                raise A.BackupError("backup_id %s already exists under %s" % (backup_id, directory))
            partial = os.path.join(directory, backup_id + A.PARTIAL_SUFFIX)
            final = os.path.join(directory, backup_id)
            os.mkdir(partial, 0o700)
            t_start = time.monotonic()
            try:
                manifest = self._fill(plan, partial, backup_id, kind, restore_of)
                self._verify_and_rename(partial, final, manifest)
                # The manifest holds the times up to its writing; the result adds the read-back.
                self.timings["total_s"] = round(time.monotonic() - t_start, 3)
            except BaseException as exc:
                left = A.remove_tree(partial)
                if left and isinstance(exc, A.BackupError):
                    raise A.BackupError("%s (the unfinished %s could not be removed: %s; it is marked .partial "
                                        "and is never restored)" % (exc, partial, left))
                raise
            pruned = []
            if kind == "backup":
                pruned = self._retention(directory, backup_id)
        return manifest, final, pruned

    def _fill(self, plan, partial, backup_id, kind, restore_of):
        o = self.opts
        started = now_utc()
        t_start = time.monotonic()
        compression = o["compression"]
        level = o.get("compression_level")
        recipients = plan["recipients"]
        files = []

        def add(path, size, sha256, entry_kind, encrypted, comp=None, raw=None):
            files.append(A.file_entry(path, size, sha256, entry_kind, encrypted, comp, raw))

        def sub(path):
            full = os.path.join(partial, path)
            A.ensure_private_dir(os.path.dirname(full))
            return full

        # 1. config copies (the .env too, at 0600), and the resolved config
        t0 = time.monotonic()
        config_records = []
        for index, (record, path) in enumerate(plan["config_files"]):
            stored = A.check_relpath(stored_config_name(record, index), "config file")
            with open(path, "rb") as handle:
                data = handle.read()
            mode = os.stat(path).st_mode & 0o7777
            if recipients:
                data = A.encrypt_bytes(data, recipients)
                stored += A.AGE_SUFFIX
            size, digest = A.write_file(sub(stored), data)
            add(stored, size, digest, "config", bool(recipients))
            config_records.append({"path": record, "file": stored, "mode": "%04o" % (0o600 if record == ENV_FILE else mode)})
        if o["config_files"] and o.get("resolved_config", True):
            _rc, resolved, _err = self.cli.compose("Resolving the compose config of project %s" % self.cli.project_name,
                                                   ["config"])
            data = resolved.encode("utf-8")
            stored = "config/" + RESOLVED_CONFIG
            if recipients:
                data = A.encrypt_bytes(data, recipients)
                stored += A.AGE_SUFFIX
            size, digest = A.write_file(sub(stored), data)
            add(stored, size, digest, "resolved-config", bool(recipients))
        self.timings["config_s"] = round(time.monotonic() - t0, 3)

        # 2. images and container state
        config = plan["config"]
        refs = [c.get("Image") for c in plan["containers"]] + [s.get("image") for s in (config.get("services") or {}).values()]
        services = service_records(config, plan["containers"], self.engine.images(refs))
        size, digest = A.write_file(sub("images.json"), A.manifest_bytes(services))
        add("images.json", size, digest, "images", False)

        suffix = A.COMPRESSION_SUFFIX[compression] + (A.AGE_SUFFIX if recipients else "")
        # 3. pre-backup hooks (database dumps), while the services still run
        hook_records = []
        for hook in plan["hooks"]:
            stored = "dumps/%s%s" % (hook["output"], suffix)
            info, _warning = self.engine.dump(sub(stored), hook["container_id"], hook, compression, level, recipients)
            add(stored, info["size"], info["sha256"], "dump", bool(recipients), compression, info["raw_size"])
            hook_records.append({"name": hook["name"], "service": hook["service"], "argv": list(hook["argv"]),
                                 "user": hook.get("user"), "file": stored, "seconds": info["seconds"]})
            self.timings.setdefault("hooks", {})[hook["name"]] = info["seconds"]

        # 4. volumes and bind mounts, with the services stopped when asked
        volume_records, bind_records = [], []
        stopped = []
        t0 = time.monotonic()
        error = None
        try:
            if plan["stop"]:
                self.cli.compose("Stopping services %s of project %s for the backup" % (", ".join(plan["stop"]), self.cli.project_name),
                                 ["stop"] + plan["stop"])
                stopped = list(plan["stop"])
            self.timings["stop_s"] = round(time.monotonic() - t0, 3)
            for volume in plan["volumes"]:
                stored = "volumes/%s.tar%s" % (volume["key"], suffix)
                A.check_relpath(stored)
                info, warning = self.engine.archive_volume(sub(stored), volume["data"], volume["method"], plan["helper_image"],
                                                           compression, level, recipients)
                if warning:
                    self.warnings.append(warning)
                add(stored, info["size"], info["sha256"], "volume", bool(recipients), compression, info["raw_size"])
                data = volume["data"]
                volume_records.append({"key": volume["key"], "name": volume["name"], "external": volume["external"],
                                       "driver": data.get("Driver"), "labels": data.get("Labels") or {},
                                       "options": data.get("Options") or {}, "mounts": volume["mounts"],
                                       "method": volume["method"], "file": stored})
                self.timings.setdefault("volumes", {})[volume["key"]] = {
                    "seconds": info["seconds"], "fsync_s": info["fsync_s"], "raw_bytes": info["raw_size"],
                    "stored_bytes": info["size"], "mb_per_s": info["mb_per_s"], "method": volume["method"]}
            for bind in plan["binds"]:
                stored = "binds/%s.tar%s" % (bind["key"], suffix)
                A.check_relpath(stored)
                info, _warning = self.engine.archive_bind(sub(stored), bind["source"], plan["helper_image"],
                                                          compression, level, recipients)
                add(stored, info["size"], info["sha256"], "bind", bool(recipients), compression, info["raw_size"])
                bind_records.append({"key": bind["key"], "source": bind["source"], "mounts": bind["mounts"], "file": stored})
                self.timings.setdefault("bind_mounts", {})[bind["source"]] = {
                    "seconds": info["seconds"], "raw_bytes": info["raw_size"], "mb_per_s": info["mb_per_s"]}
        except BaseException as exc:
            error = exc
            raise
        finally:
            if stopped:
                t1 = time.monotonic()
                try:
                    self.cli.compose("Starting services %s of project %s again" % (", ".join(stopped), self.cli.project_name),
                                     ["start"] + stopped)
                except DockerCliError as exc:
                    if error is None:
                        raise A.BackupError(str(exc))
                    self.warnings.append("starting %s again failed too: %s" % (", ".join(stopped), exc))
                self.timings["start_s"] = round(time.monotonic() - t1, 3)
        self.timings["data_s"] = round(time.monotonic() - t0, 3)

        manifest = {
            "format": A.FORMAT_VERSION,
            "kind": kind,
            "backup_id": backup_id,
            "stack": self.opts["stack"],
            "project_name": self.cli.project_name,
            "project_dir": os.path.abspath(self.opts["project_dir"]),
            "created": A.format_time(started),
            "finished": A.format_time(now_utc()),
            "host": platform.node(),
            "collection": {"name": A.COLLECTION_NAME, "version": A.COLLECTION_VERSION},
            "compression": compression,
            "compression_level": level if level is not None else A.DEFAULT_LEVEL[compression],
            "encryption": {"type": "age", "recipients": sorted(str(r) for r in recipients)} if recipients else None,
            "services": services,
            "stopped_services": stopped,
            "volumes": volume_records,
            "bind_mounts": bind_records,
            "hooks": hook_records,
            "config_files": config_records,
            "restore_of": restore_of,
            "warnings": list(self.warnings),
            "files": sorted(files, key=lambda f: f["path"]),
        }
        self.timings["total_s"] = round(time.monotonic() - t_start, 3)
        manifest["timings"] = dict(self.timings)
        return manifest

    def _verify_and_rename(self, partial, final, manifest):
        t0 = time.monotonic()
        problems = A.verify_files(partial, manifest, deep=True)
        if problems:
            raise A.ChecksumError("Reading back the new backup in %s found differences" % partial, problems)
        data = A.manifest_bytes(manifest)
        A.write_file(os.path.join(partial, A.MANIFEST_NAME), data)
        read_back, problems = A.read_manifest(partial)
        if problems or read_back != json.loads(data.decode("utf-8")):
            raise A.BackupError("Reading back %s/manifest.json gave something else than was written" % partial)
        for base, _dirs, _names in os.walk(partial):
            A.fsync_dir(base)
        os.rename(partial, final)
        A.fsync_dir(os.path.dirname(final))
        self.timings["verify_s"] = round(time.monotonic() - t0, 3)

    def _retention(self, directory, new_id):
        """Prune by keep / max_age_days after the new backup is in place; drop stale .partial dirs."""
        o = self.opts
        entries = A.scan_stack(directory, o["stack"])
        pruned = []
        for entry in entries:
            if entry["partial"]:
                # We hold the stack's lock, so no other backup is writing it: it was interrupted.
                if A.remove_tree(entry["path"]) is None:
                    pruned.append(os.path.basename(entry["path"]))
        complete = [e for e in entries if not e["partial"]]
        for backup_id in A.select_prune(complete, o.get("keep"), o.get("max_age_days"), now_utc(), protect=[new_id]):
            problem = A.remove_tree(os.path.join(directory, backup_id))
            if problem:
                self.warnings.append("pruning backup %s failed: %s" % (backup_id, problem))
            else:
                pruned.append(backup_id)
        return pruned


def copy_backup(source, manifest, dest_root, stack, keep=None, max_age_days=None):
    """Copy a finished backup to ``<dest_root>/<stack>/<id>/`` via ``.partial``, verified with the
    same checksums; returns (path, pruned). A copy that is already there and valid is kept."""
    backup_id = manifest["backup_id"]
    A.ensure_private_dir(dest_root)
    directory = A.stack_dir(dest_root, stack)
    A.ensure_private_dir(directory)
    final = os.path.join(directory, backup_id)
    with A.stack_lock(directory):
        if os.path.isdir(final):
            existing, problems = A.read_manifest(final)
            if not problems and existing == manifest and not A.verify_files(final, manifest, deep=True):
                return final, []
            raise A.BackupError("off-host copy %s already exists and differs from the backup" % final)
        partial = final + A.PARTIAL_SUFFIX
        A.remove_tree(partial)
        os.mkdir(partial, 0o700)
        try:
            for entry in manifest["files"] + [{"path": A.MANIFEST_NAME}]:
                target = os.path.join(partial, entry["path"])
                A.ensure_private_dir(os.path.dirname(target))
                with open(os.path.join(source, entry["path"]), "rb") as src, A.open_private(target) as dst:
                    shutil.copyfileobj(src, A.HashingWriter(dst), A.CHUNK)
                    os.fsync(dst.fileno())
            problems = A.verify_files(partial, manifest, deep=True)
            copied, manifest_problems = A.read_manifest(partial)
            if problems or manifest_problems or copied != manifest:
                raise A.ChecksumError("The off-host copy in %s doesn't match the backup" % partial,
                                      problems + manifest_problems or ["manifest.json differs"])
            for base, _dirs, _names in os.walk(partial):
                A.fsync_dir(base)
            os.rename(partial, final)
            A.fsync_dir(directory)
        except BaseException:
            A.remove_tree(partial)
            raise
        entries = [e for e in A.scan_stack(directory, stack) if not e["partial"]]
        pruned = []
        for backup in A.select_prune(entries, keep, max_age_days, now_utc(), protect=[backup_id]):
            if A.remove_tree(os.path.join(directory, backup)) is None:
                pruned.append(backup)
    return final, pruned


# -- the restore --------------------------------------------------------------------------
def resolve_backup(root, stack, backup_id):
    """The scan entry of ``backup_id`` (or of ``latest``) of a stack; BackupError when there is none."""
    A.check_name(stack, "stack")
    if backup_id != "latest":
        A.check_name(backup_id, "backup_id")
    directory = A.stack_dir(root, stack)
    if not os.path.isdir(directory):
        raise A.BackupError("there are no backups of stack %s under %s (no directory %s)" % (stack, root, directory))
    entries = A.scan_stack(directory, stack)
    if backup_id == "latest":
        entry = A.latest_good(entries)
        if entry is None:
            raise A.BackupError("stack %s has no complete, valid backup under %s to restore as 'latest'" % (stack, directory))
        return entry
    for entry in entries:
        if entry["backup_id"] == backup_id and not entry["partial"]:
            return entry
    known = ", ".join(e["backup_id"] for e in entries if not e["partial"]) or "none"
    raise A.BackupError("backup_id %s is not a backup of stack %s under %s (backups: %s)" % (backup_id, stack, directory, known))


def check_backup(entry, identities_text=None, identity_source=None):
    """Validate the manifest and every checksum, then the identity. Returns (manifest, identities).

    Raises ChecksumError naming each bad file, or BackupError; nothing has been touched then.
    """
    manifest = entry["manifest"]
    problems = A.validate_manifest(manifest, backup_id=entry["backup_id"]) if manifest else entry["problems"]
    if problems:
        raise A.ChecksumError("Backup %s can't be restored, nothing was changed: its manifest is invalid" % entry["backup_id"], problems)
    problems = A.verify_files(entry["path"], manifest, deep=True)
    if problems:
        raise A.ChecksumError("Backup %s failed its checksum check, nothing was changed" % entry["backup_id"], problems)
    encryption = manifest.get("encryption")
    identities = None
    if encryption:
        if identities_text is None:
            raise A.BackupError("Backup %s is encrypted with age to %s: set age_identity_file to a file with the matching "
                                "identity; nothing was changed" % (entry["backup_id"], ", ".join(encryption.get("recipients", []))))
        identities = A.load_identities(identities_text, identity_source)
        mine = A.public_keys(identities)
        recipients = encryption.get("recipients") or []
        if recipients and not set(mine) & set(recipients):
            raise A.BackupError("the identity in %s (public key %s) is not one backup %s was encrypted to (%s); nothing "
                                "was changed" % (identity_source, ", ".join(mine), entry["backup_id"], ", ".join(recipients)))
        # Prove the identity on the smallest encrypted file before anything is touched.
        encrypted = [f for f in manifest["files"] if f.get("encrypted")]
        if encrypted:
            probe = min(encrypted, key=lambda f: f["size"])
            try:
                with open(os.path.join(entry["path"], probe["path"]), "rb") as handle:
                    A.decompress_stream(handle, _NullWriter(), None, identities)
            except A.BackupError as exc:
                raise A.BackupError("the identity in %s can't decrypt %s of backup %s (%s); nothing was changed"
                                    % (identity_source, probe["path"], entry["backup_id"], exc))
    return manifest, identities


def read_config_copy(entry, record, identities):
    """The plain bytes of a config copy of a backup."""
    path = os.path.join(entry["path"], record["file"])
    with open(path, "rb") as handle:
        data = handle.read()
    if record["file"].endswith(A.AGE_SUFFIX):
        data = A.decrypt_bytes(data, identities, record["file"])
    return data


def write_config_file(path, data, mode):
    """Replace a file atomically (temporary file, fsync, rename) at ``mode``."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ops-rollback-restore-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def empty_directory(path):
    """Remove everything inside ``path`` (a bind mount's host directory), keeping ``path``."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


def project_labelled(container, project):
    return ((container.get("Config") or {}).get("Labels") or {}).get(COMPOSE_PROJECT_LABEL) == project


def synthetic_config(manifest):
    """A compose config with just the volumes and binds of a manifest (when the live one won't resolve)."""
    services = {}
    volumes = {}
    for volume in manifest.get("volumes") or []:
        volumes[volume["key"]] = {"name": volume["name"], "external": volume.get("external", False)}
        for mount in volume.get("mounts") or []:
            services.setdefault(mount["service"], {"volumes": []})["volumes"].append(
                {"type": "volume", "source": volume["key"], "target": mount.get("target")})
    for bind in manifest.get("bind_mounts") or []:
        for mount in bind.get("mounts") or []:
            services.setdefault(mount["service"], {"volumes": []})["volumes"].append(
                {"type": "bind", "source": bind["source"], "target": mount.get("target")})
    for name, record in (manifest.get("services") or {}).items():
        services.setdefault(name, {})["image"] = record.get("image")
    return {"services": services, "volumes": volumes}


class RestoreRun:
    """One restore of a stack from a backup (see compose_restore)."""

    def __init__(self, module, cli, engine, opts):
        self.module = module
        self.cli = cli
        self.engine = engine
        self.opts = opts
        self.warnings = []
        self.timings = {}

    # -- planning (read-only; every refusal happens here) ----------------------------
    def plan(self):
        o = self.opts
        t0 = time.monotonic()
        entry = resolve_backup(o["backup_root"], o["stack"], o["backup_id"])
        identities_text = None
        if o.get("age_identity_file"):
            try:
                with open(o["age_identity_file"], "r", encoding="utf-8") as handle:
                    identities_text = handle.read()
            except OSError as exc:
                raise A.BackupError("age_identity_file %s can't be read: %s; nothing was changed" % (o["age_identity_file"], exc))
        manifest, identities = check_backup(entry, identities_text, o.get("age_identity_file"))
        A.require_libs(manifest.get("compression"), False)
        self.timings["check_s"] = round(time.monotonic() - t0, 3)

        if not os.path.isdir(o["project_dir"]):
            raise A.BackupError("project_dir %s does not exist on this host; nothing was changed" % o["project_dir"])
        try:
            config = self.cli.compose_config()
        except DockerCliError as exc:
            if not o["config_files"]:
                raise A.BackupError("%s; nothing was changed (config_files=true restores the compose files too)" % exc)
            self.warnings.append("the current compose config does not resolve (%s); using the backup's" % exc)
            config = None
        live = config or synthetic_config(manifest)
        containers = self.cli.project_containers()
        project_ids = set(c["Id"] for c in containers)

        volumes = []
        if o["volumes"]:
            recorded = manifest.get("volumes") or []
            wanted = o.get("volume_names") or []
            unknown = [n for n in wanted if n not in set(v["key"] for v in recorded) | set(v["name"] for v in recorded)]
            if unknown:
                raise A.BackupError("volume_names %s are not in backup %s (it has: %s); nothing was changed"
                                    % (", ".join(unknown), entry["backup_id"], ", ".join(v["key"] for v in recorded) or "none"))
            live_volumes = live.get("volumes") or {}
            for record in recorded:
                if wanted and record["key"] not in wanted and record["name"] not in wanted:
                    continue
                target = (live_volumes.get(record["key"]) or {}).get("name") or record["name"]
                current = self.engine.volume(target)
                users = self.engine.volume_users(target) if current else []
                foreign = [cid[:12] for cid in users if cid not in project_ids]
                if foreign:
                    raise A.BackupError("volume %s is also used by container(s) %s outside project %s; remove them or "
                                        "restore without this volume; nothing was changed" % (target, ", ".join(foreign), self.cli.project_name))
                volumes.append({"record": record, "target": target, "current": current, "users": users})
        binds = []
        if o["bind_mounts"]:
            for record in manifest.get("bind_mounts") or []:
                binds.append({"record": record, "exists": os.path.isdir(record["source"])})

        config_changes = []
        if o["config_files"]:
            for record in manifest.get("config_files") or []:
                data = read_config_copy(entry, record, identities)
                path = record["path"] if os.path.isabs(record["path"]) else os.path.join(o["project_dir"], record["path"])
                current = None
                if os.path.isfile(path):
                    current = A.sha256_file(path)[1]
                wanted_sha = hashlib.sha256(data).hexdigest()
                if current != wanted_sha:
                    config_changes.append({"path": record["path"], "full_path": path, "data": data,
                                           "mode": int(record.get("mode", "0600"), 8), "before": current, "after": wanted_sha})

        affected = set()
        for item in volumes:
            affected.update(m["service"] for m in item["record"].get("mounts") or [])
            affected.update(m["service"] for m in _mounts_of(live, "volume", item["record"]["key"]))
        for item in binds:
            affected.update(m["service"] for m in item["record"].get("mounts") or [])
        services = list((live.get("services") or {}).keys())
        running_before = running_services(live, containers)
        stop = [name for name in running_before if name in affected]
        remove = [c["Id"] for c in containers if service_of(c) in affected]
        start = restore_start_services(services, running_before, manifest.get("services")) if o["start_services"] else []

        hooks = []
        dumps = dict((h["name"], h) for h in manifest.get("hooks") or [])
        for hook in o.get("restore_hooks") or []:
            if hook["name"] not in dumps:
                raise A.BackupError("restore hook %s names no dump of backup %s (dumps: %s); nothing was changed"
                                    % (hook["name"], entry["backup_id"], ", ".join(sorted(dumps)) or "none"))
            if hook["service"] not in services:
                raise A.BackupError("restore hook %s runs in unknown service %s; nothing was changed" % (hook["name"], hook["service"]))
            hooks.append(dict(hook, file=dumps[hook["name"]]["file"]))

        helper_image = None
        if volumes or binds:
            candidates = [c.get("Image") for c in containers]
            candidates += [rec.get("image_id") for rec in (manifest.get("services") or {}).values()]
            candidates += [spec.get("image") for spec in (live.get("services") or {}).values()]
            helper_image = pick_helper_image(self.engine, o.get("helper_image"), candidates)
        return {"entry": entry, "manifest": manifest, "identities": identities, "config": config, "live": live,
                "containers": containers, "volumes": volumes, "binds": binds, "config_changes": config_changes,
                "stop": stop, "remove": remove, "start": start, "hooks": hooks, "helper_image": helper_image,
                "running_before": running_before}

    @staticmethod
    def describe(plan):
        """What the restore replaces (check mode reports this and stops)."""
        return {
            "backup_id": plan["entry"]["backup_id"],
            "volumes": [{"key": v["record"]["key"], "name": v["target"], "exists": v["current"] is not None}
                        for v in plan["volumes"]],
            "bind_mounts": [b["record"]["source"] for b in plan["binds"]],
            "config_files": [c["path"] for c in plan["config_changes"]],
            "services_stopped": plan["stop"],
            "containers_removed": len(plan["remove"]),
            "services_started": plan["start"],
            "restore_hooks": [h["name"] for h in plan["hooks"]],
        }

    @staticmethod
    def diff(plan):
        """Before/after without any file content (the .env never shows)."""
        backup_id = plan["entry"]["backup_id"]
        before = {"volumes": dict((v["target"], "current" if v["current"] else "absent") for v in plan["volumes"]),
                  "config_files": dict((c["path"], c["before"] or "absent") for c in plan["config_changes"])}
        after = {"volumes": dict((v["target"], "backup %s" % backup_id) for v in plan["volumes"]),
                 "config_files": dict((c["path"], c["after"]) for c in plan["config_changes"])}
        return {"before": before, "after": after}

    # -- doing it -------------------------------------------------------------------
    def run(self, plan):
        o = self.opts
        manifest = plan["manifest"]
        entry = plan["entry"]
        directory = A.stack_dir(o["backup_root"], o["stack"])
        result = {"safety_backup_id": None, "safety_backup_path": None}
        with A.stack_lock(directory):
            t0 = time.monotonic()
            if plan["stop"]:
                self.cli.compose("Stopping services %s of project %s for the restore" % (", ".join(plan["stop"]), self.cli.project_name),
                                 ["stop"] + plan["stop"])
            self.timings["stop_s"] = round(time.monotonic() - t0, 3)

            if o["safety_backup"]:
                t0 = time.monotonic()
                try:
                    result.update(self._safety_backup(plan))
                except BaseException as exc:
                    if plan["stop"]:
                        with contextlib.suppress(DockerCliError):
                            self.cli.compose("Starting services %s again" % ", ".join(plan["stop"]), ["start"] + plan["stop"])
                    raise A.BackupError("The safety backup before restoring %s failed, so nothing was replaced (services "
                                        "started again): %s" % (entry["backup_id"], exc))
                self.timings["safety_backup_s"] = round(time.monotonic() - t0, 3)

            undo = (" To undo this restore, restore backup %s." % result["safety_backup_id"]) if result["safety_backup_id"] else ""
            try:
                t0 = time.monotonic()
                if plan["remove"]:
                    self.cli.run("Removing the containers that use the volumes to restore", ["rm", "--force"] + plan["remove"])
                for item in plan["volumes"]:
                    self._refill_volume(item, entry, manifest, plan)
                for item in plan["binds"]:
                    self._refill_bind(item, entry, manifest, plan)
                self.timings["refill_s"] = round(time.monotonic() - t0, 3)
                for change in plan["config_changes"]:
                    write_config_file(change["full_path"], change["data"], change["mode"])
                t0 = time.monotonic()
                if plan["start"]:
                    args = ["up", "--detach"]
                    if o["wait"]:
                        args += ["--wait", "--wait-timeout", str(o["wait_timeout"])]
                    self.cli.compose("Starting services %s of project %s" % (", ".join(plan["start"]), self.cli.project_name),
                                     args + plan["start"])
                self.timings["start_s"] = round(time.monotonic() - t0, 3)
                for hook in plan["hooks"]:
                    self._restore_hook(hook, entry, manifest, plan)
            except (A.BackupError, DockerCliError, OSError) as exc:
                raise A.BackupError("Restoring backup %s of stack %s failed: %s.%s" % (entry["backup_id"], o["stack"], exc, undo))
        return result

    def _safety_backup(self, plan):
        o = self.opts
        manifest = plan["manifest"]
        opts = dict(o, volumes=bool(plan["volumes"]), volume_names=[v["record"]["key"] for v in plan["volumes"]],
                    bind_mounts=bool(plan["binds"]), bind_mount_paths=[b["record"]["source"] for b in plan["binds"]],
                    config_files=True, resolved_config=plan["config"] is not None, hooks=[], stop_services=[],
                    stop_all_services=False, keep=None, max_age_days=None, backup_id=None,
                    compression=manifest.get("compression") or "zstd", compression_level=None,
                    age_recipients=list((manifest.get("encryption") or {}).get("recipients") or []),
                    extra_image_candidates=[plan["helper_image"]])
        run = BackupRun(self.module, self.cli, self.engine, opts)
        # Volumes that are gone (dropped by hand) have nothing to save; the plan skips them.
        backup_plan = run.plan(config=plan["live"], containers=self.cli.project_containers())
        safety_manifest, path, _pruned = run.run(backup_plan, kind="safety", restore_of=plan["entry"]["backup_id"],
                                                 already_locked=True)
        self.warnings.extend(run.warnings)
        return {"safety_backup_id": safety_manifest["backup_id"], "safety_backup_path": path}

    def _refill_volume(self, item, entry, manifest, plan):
        record = item["record"]
        target = item["target"]
        t0 = time.monotonic()
        if item["current"] is not None:
            self.cli.run("Removing volume %s to empty it" % target, ["volume", "rm", target])
        labels = dict(record.get("labels") or {})
        if target != record["name"] and COMPOSE_PROJECT_LABEL in labels:
            labels[COMPOSE_PROJECT_LABEL] = self.cli.project_name
        args = ["volume", "create", "--driver", record.get("driver") or "local"]
        for key, value in sorted((record.get("options") or {}).items()):
            args += ["--opt", "%s=%s" % (key, value)]
        for key, value in sorted(labels.items()):
            args += ["--label", "%s=%s" % (key, value)]
        self.cli.run("Creating volume %s again" % target, args + [target])
        options = record.get("options") or {}
        if "bind" in (options.get("o") or "").split(",") and options.get("device") and os.path.isdir(options["device"]):
            empty_directory(options["device"])  # the local driver's bind volumes keep their files
        self.engine.fill(os.path.join(entry["path"], record["file"]), target, "volume", plan["helper_image"],
                         manifest.get("compression"), plan["identities"])
        self.timings.setdefault("volumes", {})[record["key"]] = round(time.monotonic() - t0, 3)

    def _refill_bind(self, item, entry, manifest, plan):
        record = item["record"]
        t0 = time.monotonic()
        if item["exists"]:
            empty_directory(record["source"])
        else:
            os.makedirs(record["source"])
        self.engine.fill(os.path.join(entry["path"], record["file"]), record["source"], "bind", plan["helper_image"],
                         manifest.get("compression"), plan["identities"])
        self.timings.setdefault("bind_mounts", {})[record["source"]] = round(time.monotonic() - t0, 3)

    def _restore_hook(self, hook, entry, manifest, plan):
        containers = self.cli.project_containers()
        running = [c for c in containers if service_of(c) == hook["service"] and (c.get("State") or {}).get("Running")]
        if not running:
            raise A.BackupError("restore hook %s: service %s has no running container" % (hook["name"], hook["service"]))
        t0 = time.monotonic()
        self.engine.feed_exec(running[0]["Id"], hook, os.path.join(entry["path"], hook["file"]),
                              manifest.get("compression"), plan["identities"])
        self.timings.setdefault("restore_hooks", {})[hook["name"]] = round(time.monotonic() - t0, 3)


def _mounts_of(config, kind, source):
    found = []
    for service, spec in (config.get("services") or {}).items():
        for mount in spec.get("volumes") or []:
            if isinstance(mount, dict) and mount.get("type") == kind and mount.get("source") == source:
                found.append({"service": service, "target": mount.get("target")})
    return found

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups on disk: streaming archives, the manifest, checksums, retention.

Nothing here talks to Docker (that is ``_backup.py``). Everything here works on paths and
streams, so pytest reaches every branch:

* a volume's tar stream goes ``reader -> zstd|gzip -> (age) -> HashingWriter -> file`` in one
  pass: no temporary copy, the sha256 is computed over the bytes as they are written (the
  ciphertext when encrypted);
* ``<root>/<stack>/<backup_id>.partial/`` is renamed to ``<backup_id>/`` only after every file
  has been read back and matches the manifest;
* ``select_prune`` decides retention and never returns the newest good backup.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import zlib

from ansible_collections.ops.rollback.plugins.module_utils import _names

try:
    import zstandard
    HAS_ZSTANDARD = True
    ZSTANDARD_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    zstandard = None
    HAS_ZSTANDARD = False
    ZSTANDARD_IMPORT_ERROR = exc

try:
    import pyrage
    from pyrage import x25519
    HAS_PYRAGE = True
    PYRAGE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    pyrage = None
    x25519 = None
    HAS_PYRAGE = False
    PYRAGE_IMPORT_ERROR = exc

COLLECTION_NAME = "ops.rollback"
# Kept equal to galaxy.yml's version by tests/unit/plugins/module_utils/test_archive.py.
COLLECTION_VERSION = "0.1.0"
FORMAT_VERSION = 1

MANIFEST_NAME = "manifest.json"
PARTIAL_SUFFIX = ".partial"
LOCK_NAME = ".lock"
COMPRESSION_SUFFIX = {"zstd": ".zst", "gzip": ".gz"}
DEFAULT_LEVEL = {"zstd": 3, "gzip": 6}
AGE_SUFFIX = ".age"
KINDS = ("backup", "safety")
CHUNK = 1 << 20

SAFE_NAME = _names.SAFE_NAME
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class BackupError(Exception):
    """A backup or restore step failed; the message says which and with what value."""


class ChecksumError(BackupError):
    """Files of a backup don't match its manifest. ``problems`` names each file."""

    def __init__(self, where, problems):
        self.problems = list(problems)
        super().__init__("%s: %s" % (where, "; ".join(self.problems)))


# -- names and paths ---------------------------------------------------------------------
def check_name(value, option):
    """``value`` if it is one safe path component (a stack name, a backup ID), else BackupError.

    The rule is the collection's one (``_names.check_name``): letters, digits, '.', '_', '-',
    starting with a letter or digit, at most 128 characters, no '..'.
    """
    try:
        return _names.check_name(value, option)
    except _names.NameError_ as exc:
        raise BackupError(str(exc))


def check_relpath(value, option="file"):
    """A relative path inside a backup directory (``volumes/db.tar.zst``): each part safe."""
    if not isinstance(value, str) or not value or value.startswith("/"):
        raise BackupError("%s=%r must be a relative path" % (option, value))
    parts = value.split("/")
    for part in parts:
        # Config copies keep their own names, dot files such as .env included.
        if part in ("", ".", "..") or not re.match(r"^[A-Za-z0-9._-]{1,128}$", part):
            raise BackupError("%s=%r is not allowed: every part must be letters, digits, '.', '_' or '-', "
                              "and no part may be empty, '.' or '..'" % (option, value))
    return value


def stack_dir(root, stack):
    return os.path.join(root, check_name(stack, "stack"))


def new_backup_id(now, taken):
    """A UTC timestamp ID such as ``20261122T043012Z``; ``-1``, ``-2`` ... when it is taken."""
    base = now.astimezone(datetime.timezone.utc).strftime(ID_TIME_FORMAT)
    candidate, n = base, 0
    while candidate in taken:
        n += 1
        candidate = "%s-%d" % (base, n)
    return candidate


def format_time(when):
    return when.astimezone(datetime.timezone.utc).strftime(TIME_FORMAT)


def parse_time(text):
    """Parse ``TIME_FORMAT``; None when it doesn't parse."""
    try:
        return datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


# -- private files and directories --------------------------------------------------------
def ensure_private_dir(path):
    """Create ``path`` (and parents) and make it 0700. Returns True when it changed anything.

    A shared directory (sticky bit, such as /tmp) is refused rather than closed to everyone else.
    """
    changed = False
    if not os.path.isdir(path):
        os.makedirs(path, 0o700, exist_ok=True)
        changed = True
    mode = os.stat(path).st_mode
    if mode & stat.S_ISVTX:
        raise BackupError("%s is a shared directory (sticky bit set); give backups a directory of their own, "
                          "such as %s" % (path, os.path.join(path, "ops-rollback")))
    if mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)
        changed = True
    return changed


def open_private(path):
    """A new file at mode 0600, opened for unbuffered binary writing (fails if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb", buffering=0)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path):
    """Remove a directory tree; returns the error text when it couldn't (None when gone)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def stack_lock(path):
    """Exclusive lock on ``<stack dir>/.lock`` for one backup or restore at a time."""
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise BackupError("another backup or restore of this stack holds %s; try again when it "
                                  "has finished" % os.path.join(path, LOCK_NAME))
            raise
        yield
    finally:
        os.close(fd)


# -- checksums and streams ----------------------------------------------------------------
def sha256_file(path):
    """(size, sha256 hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            size += len(block)
            digest.update(block)
    return size, digest.hexdigest()


class FullWriter:
    """Writes every byte to a file or raw pipe (a raw write may be partial)."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        view = memoryview(data)
        while view:
            written = self.handle.write(view)
            view = view[written:]
        return len(data)

    def flush(self):
        return None


class HashingWriter(FullWriter):
    """Writes to a binary file while counting the bytes and hashing them with sha256."""

    def __init__(self, handle):
        super().__init__(handle)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        return super().write(data)

    def hexdigest(self):
        return self.digest.hexdigest()


class CountingReader:
    """Counts the bytes read from a binary stream (the uncompressed size of an archive)."""

    def __init__(self, handle):
        self.handle = handle
        self.size = 0

    def read(self, size=-1):
        data = self.handle.read(size)
        self.size += len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class GzipReader:
    """A binary reader of the gzip compression of another reader (for encryption's pull side)."""

    def __init__(self, source, level):
        self.source = source
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.pending = b""
        self.done = False

    def read(self, size=-1):
        size = CHUNK if size is None or size < 0 else size
        while len(self.pending) < size and not self.done:
            block = self.source.read(CHUNK)
            if block:
                self.pending += self.compressor.compress(block)
            else:
                self.pending += self.compressor.flush()
                self.done = True
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


class GzipWriter:
    """Decompresses gzip written to it into another writer."""

    def __init__(self, target):
        self.target = target
        self.decompressor = zlib.decompressobj(31)

    def write(self, data):
        out = self.decompressor.decompress(data)
        if out:
            self.target.write(out)
        return len(data)

    def flush(self):
        return None

    def close(self):
        out = self.decompressor.flush()
        if out:
            self.target.write(out)
        if not self.decompressor.eof:
            raise BackupError("the gzip stream ends early (truncated archive)")


def require_libs(compression, encrypted):
    """Raise BackupError naming the missing Python library for this compression/encryption."""
    if compression == "zstd" and not HAS_ZSTANDARD:
        raise BackupError("zstd compression needs the Python library zstandard on the managed host "
                          "(%s)" % ZSTANDARD_IMPORT_ERROR)
    if encrypted and not HAS_PYRAGE:
        raise BackupError("age encryption needs the Python library pyrage on the managed host (%s)" % PYRAGE_IMPORT_ERROR)


def parse_recipients(keys):
    """age public keys (``age1...``) as pyrage recipients; BackupError names a bad one."""
    require_libs(None, True)
    recipients = []
    for key in keys:
        try:
            recipients.append(x25519.Recipient.from_str(key.strip()))
        except (pyrage.RecipientError, ValueError) as exc:
            raise BackupError("age recipient %r is not an age X25519 public key (age1...): %s" % (key, exc))
    return recipients


def load_identities(text, source):
    """The age X25519 identities (``AGE-SECRET-KEY-1...`` lines) of an identity file's text."""
    require_libs(None, True)
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(line))
        except (pyrage.IdentityError, ValueError):
            raise BackupError("identity file %s has a line that is not an age X25519 identity "
                              "(AGE-SECRET-KEY-1...)" % source)
    if not identities:
        raise BackupError("identity file %s holds no age identity (AGE-SECRET-KEY-1... lines)" % source)
    return identities


def public_keys(identities):
    return sorted(str(identity.to_public()) for identity in identities)


def compress_stream(source, target, compression, level=None, recipients=None):
    """Compress (and encrypt to ``recipients``) everything ``source`` yields into ``target``.

    ``target`` is a HashingWriter. Returns the number of bytes read from ``source``.
    """
    if compression not in DEFAULT_LEVEL:
        raise BackupError("unknown compression %r (zstd or gzip)" % compression)
    require_libs(compression, bool(recipients))
    level = DEFAULT_LEVEL[compression] if level is None else level
    counted = CountingReader(source)
    if compression == "zstd":
        cctx = zstandard.ZstdCompressor(level=level, threads=-1)
        if recipients:
            pyrage.encrypt_io(cctx.stream_reader(counted, read_size=CHUNK), target, recipients)
        else:
            cctx.copy_stream(counted, target, read_size=CHUNK, write_size=CHUNK)
    else:
        reader = GzipReader(counted, level)
        if recipients:
            pyrage.encrypt_io(reader, target, recipients)
        else:
            while True:
                block = reader.read(CHUNK)
                if not block:
                    break
                target.write(block)
    return counted.size


def decompress_stream(source, target, compression, identities=None):
    """Decrypt (with ``identities``) and decompress ``source`` into ``target`` (a writer)."""
    require_libs(compression, bool(identities))
    if compression == "zstd":
        dctx = zstandard.ZstdDecompressor()
        if identities:
            writer = dctx.stream_writer(target, write_size=CHUNK, closefd=False)
            _decrypt_into(source, writer, identities)
            writer.flush()
        else:
            dctx.copy_stream(source, target, read_size=CHUNK, write_size=CHUNK)
    elif compression == "gzip":
        writer = GzipWriter(target)
        if identities:
            _decrypt_into(source, writer, identities)
        else:
            while True:
                block = source.read(CHUNK)
                if not block:
                    break
                writer.write(block)
        writer.close()
    elif compression in (None, "none"):
        if identities:
            _decrypt_into(source, target, identities)
        else:
            shutil.copyfileobj(source, target, CHUNK)
    else:
        raise BackupError("unknown compression %r (zstd or gzip)" % compression)


def _decrypt_into(source, target, identities):
    try:
        pyrage.decrypt_io(source, target, identities)
    except pyrage.DecryptError as exc:
        raise BackupError("age decryption failed: %s" % exc)


def encrypt_bytes(data, recipients):
    require_libs(None, True)
    return pyrage.encrypt(data, recipients)


def decrypt_bytes(data, identities, what):
    require_libs(None, True)
    try:
        return pyrage.decrypt(data, identities)
    except pyrage.DecryptError as exc:
        raise BackupError("decrypting %s failed: %s" % (what, exc))


def write_file(path, data):
    """Write bytes to a new 0600 file, fsync it; returns (size, sha256)."""
    with open_private(path) as handle:
        writer = HashingWriter(handle)
        writer.write(data)
        os.fsync(handle.fileno())
    return writer.size, writer.hexdigest()


# -- manifest -----------------------------------------------------------------------------
def file_entry(path, size, sha256, kind, encrypted=False, compression=None, raw_size=None):
    entry = {"path": path, "size": size, "sha256": sha256, "kind": kind, "encrypted": bool(encrypted),
             "compression": compression}
    if raw_size is not None:
        entry["raw_size"] = raw_size
    return entry


def validate_manifest(manifest, backup_id=None, stack=None):
    """Problems of a parsed manifest (empty list when it is well formed)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    problems = []
    if manifest.get("format") != FORMAT_VERSION:
        problems.append("format is %r, expected %d" % (manifest.get("format"), FORMAT_VERSION))
    for key in ("backup_id", "stack", "created", "files"):
        if key not in manifest:
            problems.append("%s is missing" % key)
    if backup_id is not None and manifest.get("backup_id") != backup_id:
        problems.append("backup_id is %r, but the directory is %r" % (manifest.get("backup_id"), backup_id))
    if stack is not None and manifest.get("stack") != stack:
        problems.append("stack is %r, expected %r" % (manifest.get("stack"), stack))
    if "created" in manifest and parse_time(manifest.get("created")) is None:
        problems.append("created %r is not a time like 2026-11-22T04:30:12Z" % manifest.get("created"))
    if manifest.get("kind", "backup") not in KINDS:
        problems.append("kind %r is not one of %s" % (manifest.get("kind"), ", ".join(KINDS)))
    files = manifest.get("files", [])
    if not isinstance(files, list):
        return problems + ["files is not a list"]
    seen = set()
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            problems.append("files[%d] is not an object" % index)
            continue
        path = entry.get("path")
        try:
            check_relpath(path, "files[%d].path" % index)
        except BackupError as exc:
            problems.append(str(exc))
            continue
        if path == MANIFEST_NAME or path in seen:
            problems.append("files[%d].path %r is listed twice or names the manifest" % (index, path))
        seen.add(path)
        if not isinstance(entry.get("size"), int) or isinstance(entry.get("size"), bool) or entry["size"] < 0:
            problems.append("%s: size %r is not a byte count" % (path, entry.get("size")))
        if not isinstance(entry.get("sha256"), str) or not SHA256_HEX.match(entry["sha256"]):
            problems.append("%s: sha256 %r is not 64 hex digits" % (path, entry.get("sha256")))
        if entry.get("compression") not in (None, "zstd", "gzip"):
            problems.append("%s: compression %r is not zstd or gzip" % (path, entry.get("compression")))
    encryption = manifest.get("encryption")
    if encryption is not None and (not isinstance(encryption, dict) or encryption.get("type") != "age"):
        problems.append("encryption %r is not {type: age, recipients: [...]}" % (encryption,))
    return problems


def verify_files(directory, manifest, deep=True):
    """Problems, one per file, between the manifest and the files in ``directory``.

    ``deep`` re-reads every file and compares its sha256 (over the ciphertext when encrypted);
    otherwise only presence and size are checked.
    """
    problems = []
    for entry in manifest.get("files", []):
        path = os.path.join(directory, entry["path"])
        if not os.path.isfile(path) or os.path.islink(path):
            problems.append("%s: missing" % entry["path"])
            continue
        if not deep:
            size = os.path.getsize(path)
            if size != entry["size"]:
                problems.append("%s: size %d, the manifest says %d" % (entry["path"], size, entry["size"]))
            continue
        size, digest = sha256_file(path)
        if size != entry["size"]:
            problems.append("%s: size %d, the manifest says %d" % (entry["path"], size, entry["size"]))
        elif digest != entry["sha256"]:
            problems.append("%s: sha256 %s, the manifest says %s" % (entry["path"], digest, entry["sha256"]))
    return problems


def unlisted_files(directory, manifest):
    """Files in ``directory`` the manifest doesn't name (besides the manifest itself)."""
    listed = set(entry.get("path") for entry in manifest.get("files", []) if isinstance(entry, dict))
    found = []
    for base, _dirs, names in os.walk(directory):
        for name in names:
            rel = os.path.relpath(os.path.join(base, name), directory)
            if rel != MANIFEST_NAME and rel not in listed:
                found.append(rel)
    return sorted(found)


def read_manifest(directory):
    """(manifest, problems) of ``directory/manifest.json``."""
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8")), []
    except FileNotFoundError:
        return None, ["manifest.json is missing"]
    except (OSError, ValueError) as exc:
        return None, ["manifest.json can't be read: %s" % exc]


def manifest_bytes(manifest):
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


# -- listing and retention ----------------------------------------------------------------
def scan_stack(directory, stack, verify_checksums=False):
    """Every backup directory of a stack, oldest first, each with its validity.

    An entry: ``backup_id``, ``path``, ``partial`` (an unfinished ``.partial`` directory),
    ``manifest`` (or None), ``created`` (datetime or None), ``kind``, ``valid`` and ``problems``.
    """
    entries = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return entries
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isdir(path) or os.path.islink(path):
            continue
        partial = name.endswith(PARTIAL_SUFFIX)
        backup_id = name[:-len(PARTIAL_SUFFIX)] if partial else name
        if not SAFE_NAME.match(backup_id) or ".." in backup_id:
            continue
        entry = {"backup_id": backup_id, "path": path, "partial": partial, "manifest": None,
                 "created": None, "kind": None, "valid": False, "problems": []}
        if partial:
            entry["problems"].append("unfinished backup (.partial): it never completed its verification")
        else:
            manifest, problems = read_manifest(path)
            if manifest is not None:
                problems = validate_manifest(manifest, backup_id=backup_id, stack=stack)
                entry["manifest"] = manifest
                entry["created"] = parse_time(manifest.get("created"))
                entry["kind"] = manifest.get("kind", "backup")
                if not problems:
                    problems = verify_files(path, manifest, deep=verify_checksums)
            entry["problems"] = problems
            entry["valid"] = not problems
        entries.append(entry)
    entries.sort(key=sort_key)
    return entries


def sort_key(entry):
    created = entry.get("created")
    stamp = created.timestamp() if created else 0.0
    match = re.match(r"^(.*?)(?:-(\d+))?$", entry["backup_id"])
    return (stamp, match.group(1), int(match.group(2) or 0), entry["backup_id"])


def latest_good(entries, kind="backup"):
    """The newest valid, complete backup of ``kind`` (None when there is none)."""
    for entry in reversed(entries):
        if entry["valid"] and not entry["partial"] and (kind is None or entry["kind"] == kind):
            return entry
    return None


def select_prune(entries, keep=None, max_age_days=None, now=None, protect=()):
    """The backup IDs retention removes: beyond the ``keep`` newest, or older than ``max_age_days``.

    ``entries`` are complete backups (``scan_stack`` without partials), in any order. The newest
    valid backup of kind ``backup`` and every ID in ``protect`` are never returned; with neither
    ``keep`` nor ``max_age_days`` nothing is.
    """
    if keep is not None and keep < 1:
        raise BackupError("keep must be at least 1, got %r" % keep)
    if max_age_days is not None and max_age_days < 0:
        raise BackupError("max_age_days must not be negative, got %r" % max_age_days)
    complete = sorted((e for e in entries if not e.get("partial")), key=sort_key, reverse=True)
    keeper = latest_good(list(reversed(complete)))
    protected = set(protect)
    if keeper is not None:
        protected.add(keeper["backup_id"])
    cutoff = None
    if max_age_days:
        cutoff = (now or datetime.datetime.now(datetime.timezone.utc)) - datetime.timedelta(days=max_age_days)
    prune = []
    for index, entry in enumerate(complete):
        if entry["backup_id"] in protected:
            continue
        too_many = keep is not None and index >= keep
        too_old = cutoff is not None and (entry.get("created") is None or entry["created"] < cutoff)
        if too_many or too_old:
            prune.append(entry["backup_id"])
    return prune


def summary(entry):
    """What backup_info returns for one backup: the manifest's summary and the validity."""
    manifest = entry.get("manifest") or {}
    files = manifest.get("files") or []
    encryption = manifest.get("encryption") or None
    return {
        "backup_id": entry["backup_id"],
        "path": entry["path"],
        "partial": entry["partial"],
        "valid": entry["valid"],
        "problems": entry["problems"],
        "kind": entry.get("kind"),
        "created": manifest.get("created"),
        "finished": manifest.get("finished"),
        "host": manifest.get("host"),
        "project_name": manifest.get("project_name"),
        "collection_version": (manifest.get("collection") or {}).get("version"),
        "compression": manifest.get("compression"),
        "encrypted": encryption is not None,
        "recipients": (encryption or {}).get("recipients", []) if isinstance(encryption, dict) else [],
        "volumes": [v.get("key") for v in manifest.get("volumes") or [] if isinstance(v, dict)],
        "bind_mounts": [b.get("source") for b in manifest.get("bind_mounts") or [] if isinstance(b, dict)],
        "dumps": [h.get("name") for h in manifest.get("hooks") or [] if isinstance(h, dict)],
        "restore_of": manifest.get("restore_of"),
        "file_count": len(files) if isinstance(files, list) else 0,
        "size": sum(f.get("size", 0) for f in files if isinstance(f, dict) and isinstance(f.get("size"), int)),
    }

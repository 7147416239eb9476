# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic, private writes for the collection's state: releases, ledger, history, reports.

A rollback is often interrupted at the worst moment, so every file is written to a temporary
name in the same directory, flushed and renamed: a reader sees the old or the new content,
never half of it. State holds copies of `.env` files: directories are 0700 and files 0600.
"""

from __future__ import annotations

import json
import os
import tempfile

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_dir(path):
    """Create path (and parents) with mode 0700; tighten the mode of an existing one."""
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        ensure_dir(parent)  # os.makedirs would give the parents the default mode
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    if os.stat(path).st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def replace_file(path, data, mode, owner=None):
    """Replace path's content atomically in its existing directory: a temporary file there,
    flushed, given mode (and owner, a (uid, gid) pair), renamed over path, and the rename made
    durable. A reader sees the old or the new content, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if owner:
                os.fchown(handle.fileno(), *owner)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    """Make a rename durable; not every file system allows it, which is no error."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path, data, mode=FILE_MODE):
    """A state file: its directory created private (0700), the file replaced atomically."""
    ensure_dir(os.path.dirname(path))
    replace_file(path, data, mode)


def write_json_atomic(path, data, mode=FILE_MODE):
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode)


def read_json(path, default=None):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return default


def append_line(path, line, mode=FILE_MODE):
    """Append one line (history). O_APPEND keeps concurrent appends whole."""
    ensure_dir(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.fchmod(fd, mode)
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a torn last line must not swallow this one
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

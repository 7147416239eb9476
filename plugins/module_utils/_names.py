# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of names that become path components (stack names, release and backup IDs).

Anything that ends up in a path under the state or backup root goes through here first, so a
traversal (``../``), an absolute path or a shell metacharacter is refused before any change.
"""

from __future__ import annotations

import os
import re

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# What Compose v2 accepts as a project name (it refuses anything else, but only when it runs).
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class NameError_(ValueError):
    """A value that can't be used as a path component; the message names the option."""


def check_name(value, option):
    """Return ``value`` if it is a safe single path component, else raise NameError_."""
    if not isinstance(value, str) or not value:
        raise NameError_("%s must be a non-empty string" % option)
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        raise NameError_("%s=%s is not allowed: use letters, digits, '.', '_' and '-' only "
                         "(at most 128, no '..', no '/')" % (option, shown(value)))
    return value


def shown(value, limit=80):
    """repr() of a value for an error message, cut to `limit` characters (a huge value is not echoed)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "... (%d characters)" % len(value)


def check_project_name(value, option="project_name"):
    """Return ``value`` if Compose accepts it as a project name, else raise NameError_."""
    if not isinstance(value, str) or not PROJECT_NAME.fullmatch(value):
        raise NameError_("%s=%s is not a Compose project name: use lowercase letters, digits, '-' and '_' "
                         "(at most 63, starting with a letter or digit)" % (option, shown(value)))
    return value


def child_path(root, *names):
    """Join validated names under root and make sure the result stays under root."""
    path = os.path.realpath(os.path.join(root, *names))
    base = os.path.realpath(root)
    if path != base and not path.startswith(base + os.sep):
        raise NameError_("path %s escapes %s" % (path, base))
    return path

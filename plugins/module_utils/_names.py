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


class NameError_(ValueError):
    """A value that can't be used as a path component; the message names the option."""


def check_name(value, option):
    """Return ``value`` if it is a safe single path component, else raise NameError_."""
    if not isinstance(value, str) or not value:
        raise NameError_("%s must be a non-empty string" % option)
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        raise NameError_("%s=%r is not allowed: use letters, digits, '.', '_' and '-' only "
                         "(at most 128, no '..', no '/')" % (option, value))
    return value


def child_path(root, *names):
    """Join validated names under root and make sure the result stays under root."""
    path = os.path.realpath(os.path.join(root, *names))
    base = os.path.realpath(root)
    if path != base and not path.startswith(base + os.sep):
        raise NameError_("path %s escapes %s" % (path, base))
    return path

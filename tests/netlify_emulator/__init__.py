# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A local, stateful Netlify API emulator validated against Netlify's OpenAPI definition.

See README.md in this directory. Quick use from Python:

    with Emulator(tokens=["t0ken"]) as emulator:
        ...  # emulator.api_url is http://127.0.0.1:<port>/api/v1
"""
from .server import Emulator
from .spec import OpenApiSpec, SpecViolation, validate_schema
from .state import FIXTURE_PATH

__all__ = ["Emulator", "OpenApiSpec", "SpecViolation", "validate_schema", "FIXTURE_PATH"]

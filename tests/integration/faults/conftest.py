"""Fixtures of the fault-injection suite, and its summary table.

The suite reuses the rollback tests' Stack (tests/integration/rollback/stack.py) and the
blue-green tests' BlueGreen (tests/integration/blue_green/bg_helpers.py). Names start with
`opsfault`, fixed ports are 18800-18849 (Caddy's are free ones from the OS).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
for _sub in ("rollback", "blue_green", "caddy"):
    if os.path.join(INTEGRATION, _sub) not in sys.path:
        sys.path.append(os.path.join(INTEGRATION, _sub))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from summary import FaultSummary  # noqa: E402  (needs the path above)

_SUMMARY = FaultSummary()


class _EveryReport:
    """The table also lists faults proved by other suites' tests. A conftest hook only sees
    the reports of tests below its own directory, so the summary listens as a plugin."""

    @staticmethod
    def pytest_runtest_logreport(report):
        _SUMMARY.add(report)


def pytest_configure(config):
    config.pluginmanager.register(_EveryReport(), "ops-rollback-fault-summary")


def pytest_terminal_summary(terminalreporter):
    _SUMMARY.write(terminalreporter)

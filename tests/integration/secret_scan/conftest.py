"""The secret scan's test beds: a Compose stack and a blue-green stack behind Caddy whose .env
files hold recognisable secret values, and the Netlify emulator accepting a recognisable token.
Ports 18790-18795; Compose projects start with `opsbad`."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
for _sub in ("rollback", "caddy", "blue_green"):
    if os.path.join(INTEGRATION, _sub) not in sys.path:
        sys.path.append(os.path.join(INTEGRATION, _sub))

from suite_summary import SuiteSummary  # noqa: E402

SUMMARY = SuiteSummary("secret-scan", "secret_scan/test_secret_scan.py")


def pytest_runtest_logreport(report):
    SUMMARY.add(report)


def pytest_terminal_summary(terminalreporter):
    SUMMARY.write(terminalreporter)

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import Stack, record  # noqa: E402  (needs the path above)


def two_releases(name, port):
    """A fresh stack with 1,000 rows, v1 and v2 deployed and recorded healthy; v2 runs."""
    s = Stack(name, port, "/tmp/ops-rollback-it-" + name)
    s.create()
    s.deploy("v1")
    s.seed()
    record(s, "v1")
    s.deploy("v2")
    record(s, "v2")
    return s


@pytest.fixture
def stack():
    """A fresh stack for a test that changes it."""
    s = two_releases("opsrbit", 18620)
    yield s
    s.destroy()


@pytest.fixture(scope="module")
def unchanged_stack():
    """One stack shared by the tests that must leave it unchanged (they assert so)."""
    s = two_releases("opsrbro", 18621)
    yield s
    s.destroy()

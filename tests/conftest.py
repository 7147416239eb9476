"""Makes the checkout importable as ansible_collections.ops.rollback for every test.

scripts/setup/collection_link.sh links .cache/collections/ansible_collections/ops/rollback
to the repository root; community.docker and ansible come from the venv.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names for the sites and deploys of fixture.json that the tests talk about (see README.md)."""

SITE_ID = "3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10"
SITE_DOMAIN = "www.ops-demo.example"
OTHER_SITE_ID = "8c2d4e6f-1a3b-4c5d-9e7f-0a1b2c3d4e5f"

# Deploys of SITE_ID, newest first.
PUBLISHED = "6650f1c2e00000000000000e"       # production, ready, published
ERRORED = "6650f1c2e00000000000000c"         # production, error
HEADER_FIX = "6650f1c2e00000000000000b"      # production, ready: steps_back=1
HEADER_COMMIT = "594fd1615a341c77829e83ed988f137e1ba96231"  # also built as a branch deploy
ASTRO = "6650f1c2e000000000000008"           # production, ready: steps_back=2 (past a skipped deploy)
NAVIGATION = "6650f1c2e000000000000006"      # production, ready: steps_back=3 (past a draft); commit abc1234d...

# A deploy of OTHER_SITE_ID.
OTHER_SITE_DEPLOY = "6651b2c3d000000000000002"

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the Netlify emulator in the foreground: python -m tests.netlify_emulator --help"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .server import DEFAULT_MAX_PER_PAGE, Emulator
from .state import FIXTURE_PATH


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tests.netlify_emulator",
        description="Local Netlify API emulator (binds 127.0.0.1 only). The accepted token is "
                    "--token-file's content or $NETLIFY_AUTH_TOKEN.")
    parser.add_argument("--port", type=int, default=8787, help="TCP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--fixture", default=FIXTURE_PATH, help="deploy-history fixture (JSON)")
    parser.add_argument("--token-file", help="file holding the accepted token (else $NETLIFY_AUTH_TOKEN)")
    parser.add_argument("--max-per-page", type=int, default=DEFAULT_MAX_PER_PAGE,
                        help="largest page the API hands out (small values exercise pagination)")
    args = parser.parse_args(argv)
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    else:
        token = os.environ.get("NETLIFY_AUTH_TOKEN", "")
    if not token:
        parser.error("set NETLIFY_AUTH_TOKEN (any string) or pass --token-file")
    emulator = Emulator(tokens=[token], fixture_path=args.fixture, port=args.port, max_per_page=args.max_per_page)
    # One JSON line, so scripts can read the address (the token is never printed).
    sys.stdout.write(json.dumps({"url": emulator.url, "api_url": emulator.api_url,
                                 "spec_version": emulator.spec.version}) + "\n")
    sys.stdout.flush()
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

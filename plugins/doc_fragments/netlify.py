# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of plugins.module_utils._netlify.netlify_argument_spec(): keep both in step.
    DOCUMENTATION = r"""
options:
  auth_token:
    description:
      - "Netlify personal access token, sent as C(Authorization: Bearer ...)."
      - If not set, the value of the E(NETLIFY_AUTH_TOKEN) environment variable is used.
      - The token never appears in the module's output, errors, diff or logs.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the Netlify API.
      - Change it only for a proxy or a local emulator. A plain C(http://) URL to another host than
        the loopback interface gets a warning, because the token would travel unencrypted.
    type: str
    default: https://api.netlify.com/api/v1
  validate_certs:
    description:
      - Whether to check the API's TLS certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each API request. The Netlify API itself ends requests after 30 seconds.
      - A request that times out is retried like a connection error.
    type: float
    default: 30
  max_retries:
    description:
      - How many times a request is retried after HTTP 429, an HTTP 5xx answer, a timeout or a connection
        error. V(0) disables retries.
      - On HTTP 429 the module waits as long as C(Retry-After) or C(X-RateLimit-Reset) asks; otherwise it backs
        off exponentially from O(retry_delay), with jitter.
      - Other errors, such as HTTP 401 or 404, are never retried.
    type: int
    default: 5
  retry_delay:
    description:
      - Seconds of the first backoff; each further retry doubles it, up to O(retry_max_delay).
    type: float
    default: 1
  retry_max_delay:
    description:
      - Longest wait between two attempts, in seconds.
      - When a rate limit asks for a longer wait, the module fails at once instead of waiting.
    type: float
    default: 60
"""

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of plugins.module_utils._docker_cli.compose_project_argument_spec().
    DOCUMENTATION = r"""
options:
  project_dir:
    description:
      - The Compose project's directory, as C(docker compose --project-directory) takes it.
    type: path
    required: true
  project_name:
    description:
      - The Compose project name (C(docker compose --project-name)).
    type: str
    required: true
  files:
    description:
      - Compose files to use, relative to O(project_dir) or absolute.
      - When empty, Compose looks for its default file names in O(project_dir).
    type: list
    elements: path
    default: []
requirements:
  - Docker CLI with the Compose v2 plugin (C(docker compose)) on the managed host.
"""

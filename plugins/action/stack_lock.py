# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adds the lock owner's controller identity before the stack_lock module runs on the host.

Only the controller knows which ansible-playbook process holds a lock: this action runs in
a worker process forked from ansible-playbook, so its parent PID is that process. With it,
the module can tell a lock left by a killed run (its process is gone) from a live one.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        args.setdefault("controller", socket.gethostname())
        # The controller's user, when the playbook knows no better (no AWX job, no USER).
        args.setdefault("who", getpass.getuser())
        args.setdefault("controller_pid", os.getppid())
        result.update(self._execute_module(module_name="ops.rollback.stack_lock", module_args=args,
                                           task_vars=task_vars))
        return result

# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adds the lock owner's controller identity before the stack_lock module runs on the host.

Only the controller knows which ansible-playbook process holds a lock: this action runs in
a worker process forked from ansible-playbook, which multiprocessing records as the worker's
parent. With that PID the module can tell a lock left by a killed run (its process is gone)
from a live one.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import socket

from ansible.plugins.action import ActionBase


def controller_pid():
    """PID of the ansible-playbook process that forked this worker.

    Not os.getppid(): ansible-core 2.19 and later run each worker in a session of its own, so a
    SIGKILL of ansible-playbook's process group leaves the worker running its task to the end,
    reparented to PID 1 (or a subreaper). A lock taken then would name a process that never
    goes away, and no later run could see it was stale. multiprocessing keeps the PID of the
    process that started the worker, alive or not.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        return parent.pid
    return os.getppid()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        args.setdefault("controller", socket.gethostname())
        # The controller's user, when the playbook knows no better (no AWX job, no USER).
        args.setdefault("who", getpass.getuser())
        args.setdefault("controller_pid", controller_pid())
        result.update(self._execute_module(module_name="ops.rollback.stack_lock", module_args=args,
                                           task_vars=task_vars))
        return result

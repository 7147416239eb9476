# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stack_lock action names the ansible-playbook process that started the worker, also
when that process was killed before the worker ran the task (the worker is then an orphan)."""

from __future__ import annotations

import multiprocessing
import os
import time

from ansible_collections.ops.rollback.plugins.action.stack_lock import controller_pid

FORK = multiprocessing.get_context("fork")


def _worker(controller, queue):
    """Like an ansible worker whose ansible-playbook was SIGKILLed: wait until the process
    that forked it is gone, then report what the action would record."""
    deadline = time.monotonic() + 20
    while os.getppid() == controller and time.monotonic() < deadline:
        time.sleep(0.02)
    queue.put((controller, controller_pid(), os.getppid()))


def _controller(queue):
    """Like ansible-playbook: start a worker, then die at once."""
    worker = FORK.Process(target=_worker, args=(os.getpid(), queue))
    worker.start()
    os._exit(0)


def test_names_the_process_that_forked_the_worker():
    queue = FORK.Queue()
    proc = FORK.Process(target=lambda q: q.put(controller_pid()), args=(queue,))
    proc.start()
    assert queue.get(timeout=20) == os.getpid()
    proc.join(timeout=20)


def test_an_orphaned_worker_still_names_the_dead_controller():
    queue = FORK.Queue()
    controller = FORK.Process(target=_controller, args=(queue,))
    controller.start()
    controller.join(timeout=20)
    dead, recorded, parent_now = queue.get(timeout=30)
    assert dead == controller.pid
    assert parent_now != dead, "the worker was not orphaned"
    assert recorded == dead

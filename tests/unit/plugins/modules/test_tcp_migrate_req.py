# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tcp_migrate_req as Ansible runs it, on a stand-in for /proc/sys/net/ipv4/tcp_migrate_req in
tmp_path: check, real, check, real; the boot file; a kernel without the setting; errors.
(The real setting, on the real kernel under Caddy, is tests/integration/caddy.)"""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.modules import tcp_migrate_req
from ansible_collections.ops.rollback.plugins.module_utils import _tcp_migrate_req as tmr


def run_module(args, capsys, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            tcp_migrate_req.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def proc(tmp_path, monkeypatch):
    path = tmp_path / "tcp_migrate_req"
    path.write_text("0\n")
    monkeypatch.setattr(tmr, "PROC_PATH", str(path))
    return path


def test_check_real_check_real(proc, tmp_path, capsys):
    conf = tmp_path / "sysctl.d" / "60-ops-rollback-caddy.conf"
    args = {"persist_file": str(conf)}
    first = run_module(args, capsys, check=True, diff=True)
    assert first["changed"] is True and (first["previous_value"], first["value"]) == (0, 1), first
    assert first["diff"]["before"]["value"] == 0 and first["diff"]["after"]["value"] == 1
    assert proc.read_text() == "0\n" and not conf.exists()           # check mode changed nothing
    second = run_module(args, capsys)
    assert second["changed"] is True and second["value"] == 1
    assert proc.read_text().strip() == "1"
    assert "net.ipv4.tcp_migrate_req = 1" in conf.read_text()
    assert oct(os.stat(conf).st_mode & 0o777) == "0o644"
    third = run_module(args, capsys, check=True)
    assert third["changed"] is False, third
    fourth = run_module(args, capsys)
    assert fourth["changed"] is False and fourth["value"] == 1, fourth


def test_a_missing_boot_file_alone_is_a_change(proc, tmp_path, capsys):
    proc.write_text("1\n")
    conf = tmp_path / "60.conf"
    result = run_module({"persist_file": str(conf)}, capsys)
    assert result["changed"] is True and result["previous_value"] == 1
    assert conf.exists()


def test_running_value_only(proc, capsys):
    result = run_module({"persist_file": ""}, capsys)
    assert result["changed"] is True and result["persist_file"] == ""
    assert proc.read_text().strip() == "1"


def test_disabled_sets_zero(proc, tmp_path, capsys):
    proc.write_text("1\n")
    result = run_module({"enabled": False, "persist_file": str(tmp_path / "c.conf")}, capsys)
    assert result["changed"] is True and result["value"] == 0
    assert proc.read_text().strip() == "0"
    assert "net.ipv4.tcp_migrate_req = 0" in (tmp_path / "c.conf").read_text()


def test_a_kernel_without_the_setting_warns_and_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tmr, "PROC_PATH", str(tmp_path / "absent"))
    # the warning as the module gives it (how it reaches the result differs between ansible-core versions)
    warned = []
    monkeypatch.setattr(tcp_migrate_req.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))
    conf = tmp_path / "c.conf"
    result = run_module({"persist_file": str(conf)}, capsys)
    assert result["changed"] is False and result["supported"] is False, result
    assert len(warned) == 1 and "Linux 5.14" in warned[0], warned
    assert not conf.exists()


def test_a_read_only_proc_fails_clearly(proc, tmp_path, monkeypatch, capsys):
    def refuse(_value, path=None):
        raise PermissionError(13, "Read-only file system", path)
    monkeypatch.setattr(tmr, "write_value", refuse)
    result = run_module({"persist_file": ""}, capsys)
    assert result["failed"] is True
    assert "Setting net.ipv4.tcp_migrate_req to 1 failed" in result["msg"], result


@pytest.mark.parametrize("running, persisted, enabled, persist_file, expected", [
    (0, None, True, "/f", {"running": 1, "persist": tmr.persist_text(True)}),
    (1, tmr.persist_text(True), True, "/f", {"running": None, "persist": None}),
    (1, "net.ipv4.tcp_migrate_req = 0\n", True, "/f", {"running": None, "persist": tmr.persist_text(True)}),
    (0, None, True, "", {"running": 1, "persist": None}),
    (None, None, True, "/f", {"running": None, "persist": None}),
    (1, None, False, "", {"running": 0, "persist": None}),
])
def test_plan(running, persisted, enabled, persist_file, expected):
    assert tmr.plan(running, persisted, enabled, persist_file) == expected

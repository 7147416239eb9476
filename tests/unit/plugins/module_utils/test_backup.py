# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a backup of a stack takes, the checks before a restore, and the streams to processes."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import stat

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A
from ansible_collections.ops.rollback.plugins.module_utils import _backup as B

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 22, 4, 30, 12, tzinfo=UTC)

CONFIG = {
    "name": "shop",
    "services": {
        "db": {"image": "ops-rollback-test/postgres:15",
               "volumes": [{"type": "volume", "source": "dbdata", "target": "/var/lib/postgresql/data"}]},
        "web": {"image": "ops-rollback-test/app:v1",
                "volumes": [{"type": "volume", "source": "webdata", "target": "/data"},
                            {"type": "bind", "source": "/srv/shop/uploads/", "target": "/uploads"},
                            {"type": "volume", "target": "/anonymous"},
                            {"type": "tmpfs", "target": "/tmp"}]},
        "worker": {"image": "ops-rollback-test/app:v1",
                   "volumes": [{"type": "volume", "source": "webdata", "target": "/data", "read_only": True},
                               {"type": "bind", "source": "/srv/shop/uploads", "target": "/in"}]},
    },
    "volumes": {"dbdata": {"name": "shop_dbdata"}, "webdata": {"name": "shared_web", "external": True}},
}


def container(service, running=True, cid=None, image="sha256:img", health=None):
    state = {"Running": running, "Status": "running" if running else "exited"}
    if health:
        state["Health"] = {"Status": health}
    return {"Id": cid or "id-" + service, "Name": "/shop-%s-1" % service, "Image": image, "State": state,
            "Config": {"Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": service}}}


# -- what a stack uses --------------------------------------------------------------------
def test_stack_volumes_by_key_with_every_mount():
    volumes = B.stack_volumes(CONFIG)
    assert [v["key"] for v in volumes] == ["dbdata", "webdata"]
    assert volumes[1] == {"key": "webdata", "name": "shared_web", "external": True,
                          "mounts": [{"service": "web", "target": "/data"}, {"service": "worker", "target": "/data"}]}


def test_stack_volumes_only_by_key_or_name_and_unknown_is_named():
    assert [v["key"] for v in B.stack_volumes(CONFIG, ["shop_dbdata"])] == ["dbdata"]
    assert [v["key"] for v in B.stack_volumes(CONFIG, ["webdata"])] == ["webdata"]
    with pytest.raises(A.BackupError, match="nope.*dbdata, webdata"):
        B.stack_volumes(CONFIG, ["nope"])


def test_stack_volumes_of_a_config_without_volumes():
    assert B.stack_volumes({"services": {"a": {}}}) == []


def test_stack_binds_normalised_and_filtered():
    binds = B.stack_binds(CONFIG)
    assert len(binds) == 1 and binds[0]["source"] == "/srv/shop/uploads"
    assert [m["service"] for m in binds[0]["mounts"]] == ["web", "worker"]
    assert B.stack_binds(CONFIG, ["/srv/shop/uploads/"])[0]["source"] == "/srv/shop/uploads"
    with pytest.raises(A.BackupError, match="/etc"):
        B.stack_binds(CONFIG, ["/etc"])


def test_bind_key_is_a_safe_unique_file_name():
    key = B.bind_key("/srv/shop/uploads")
    assert key.startswith("srv-shop-uploads-") and A.check_name(key, "key") == key
    assert B.bind_key("/srv/shop uploads") != B.bind_key("/srv/shop_uploads")
    assert A.check_name(B.bind_key("/"), "key").startswith("root-")
    assert A.check_name(B.bind_key("/.hidden/ü"), "key")


def test_config_file_records_defaults_env_and_outside_files(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    for name in ("compose.yml", "compose.override.yml", ".env", "other.yml"):
        (project / name).write_text("x")
    (tmp_path / "shared.yml").write_text("y")
    assert B.config_file_records(str(project), []) == [
        ("compose.yml", str(project / "compose.yml")),
        ("compose.override.yml", str(project / "compose.override.yml")),
        (".env", str(project / ".env"))]
    records = B.config_file_records(str(project), ["other.yml", str(tmp_path / "shared.yml"), "missing.yml", "other.yml"])
    assert records == [("other.yml", str(project / "other.yml")), (str(tmp_path / "shared.yml"), str(tmp_path / "shared.yml")),
                       (".env", str(project / ".env"))]


def test_stored_config_name_stays_inside_the_backup():
    assert B.stored_config_name(".env", 0) == "config/.env"
    assert B.stored_config_name("deploy/compose.yml", 1) == "config/deploy/compose.yml"
    name = B.stored_config_name("/etc/shop/compose file.yml", 2)
    assert name == "config/external/2-compose_file.yml" and A.check_relpath(name)


def test_running_services_in_config_order():
    containers = [container("web"), container("db", running=False), container("worker")]
    assert B.running_services(CONFIG, containers) == ["web", "worker"]


def test_services_to_stop():
    running = ["db", "web"]
    known = ["db", "web", "worker"]
    assert B.services_to_stop([], True, running, known) == ["db", "web"]
    assert B.services_to_stop(["web", "worker"], False, running, known) == ["web"]
    assert B.services_to_stop([], False, running, known) == []
    with pytest.raises(A.BackupError, match="nginx"):
        B.services_to_stop(["nginx"], False, running, known)


def test_service_records_prefer_the_running_container_and_fall_back_to_the_image():
    containers = [container("db", running=False, cid="old", image="sha256:old"),
                  container("db", cid="new", image="sha256:new", health="healthy")]
    images = {"sha256:new": {"Id": "sha256:new", "RepoTags": ["ops-rollback-test/postgres:15"], "RepoDigests": ["x@sha256:1"]},
              "ops-rollback-test/app:v1": {"Id": "sha256:app", "RepoTags": ["ops-rollback-test/app:v1"]}}
    records = B.service_records(CONFIG, containers, images)
    assert records["db"] == {"image": "ops-rollback-test/postgres:15", "image_id": "sha256:new",
                             "repo_tags": ["ops-rollback-test/postgres:15"], "repo_digests": ["x@sha256:1"],
                             "state": "running", "health": "healthy", "container": "shop-db-1", "containers": 2}
    assert records["web"]["state"] == "missing" and records["web"]["image_id"] == "sha256:app"
    assert records["web"]["repo_digests"] == []


def test_volume_method(tmp_path):
    mountpoint = tmp_path / "shop_dbdata" / "_data"
    mountpoint.mkdir(parents=True)
    plain = {"Name": "shop_dbdata", "Driver": "local", "Options": None, "Mountpoint": str(mountpoint)}
    assert B.volume_method("auto", plain, True, True) == "mountpoint"
    assert B.volume_method("auto", plain, False, True) == "api"
    assert B.volume_method("auto", plain, True, False) == "api"
    assert B.volume_method("api", plain, True, True) == "api"
    nfs = dict(plain, Options={"type": "nfs"})
    assert B.volume_method("auto", nfs, True, True) == "api"
    with pytest.raises(A.BackupError, match="shop_dbdata"):
        B.volume_method("mountpoint", nfs, True, True)
    assert B.volume_method("auto", dict(plain, Mountpoint=str(tmp_path / "gone" / "_data")), True, True) == "api"


def test_restore_start_services():
    manifest_services = {"db": {"state": "running"}, "web": {"state": "exited"}, "gone": {"state": "running"}}
    assert B.restore_start_services(["db", "web", "worker"], ["worker"], manifest_services) == ["db", "worker"]
    assert B.restore_start_services(["db", "web"], [], {}) == []


def test_synthetic_config_gives_back_volumes_and_binds():
    manifest = {"volumes": [{"key": "dbdata", "name": "shop_dbdata", "mounts": [{"service": "db", "target": "/d"}]}],
                "bind_mounts": [{"source": "/srv/u", "mounts": [{"service": "web", "target": "/u"}]}],
                "services": {"db": {"image": "pg"}, "web": {"image": "app"}}}
    config = B.synthetic_config(manifest)
    assert B.stack_volumes(config)[0]["name"] == "shop_dbdata"
    assert B.stack_binds(config)[0]["source"] == "/srv/u"
    assert config["services"]["web"]["image"] == "app"


# -- before a restore -----------------------------------------------------------------------
def backup_on_disk(root, backup_id="20261122T043012Z", stack="shop", files=None, created=NOW, kind="backup", **extra):
    directory = os.path.join(root, stack, backup_id)
    os.makedirs(directory)
    entries = []
    for name, (data, encrypted) in (files or {"volumes/dbdata.tar.zst": (b"archive", False)}).items():
        full = os.path.join(directory, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        entries.append(A.file_entry(name, len(data), hashlib.sha256(data).hexdigest(), "volume", encrypted))
    manifest = {"format": 1, "kind": kind, "backup_id": backup_id, "stack": stack, "created": A.format_time(created),
                "files": entries}
    manifest.update(extra)
    with open(os.path.join(directory, A.MANIFEST_NAME), "wb") as handle:
        handle.write(A.manifest_bytes(manifest))
    return directory


def test_resolve_backup_latest_and_by_id(tmp_path):
    root = str(tmp_path)
    backup_on_disk(root, "b1", created=NOW - datetime.timedelta(hours=1))
    backup_on_disk(root, "b2", created=NOW)
    backup_on_disk(root, "s1", created=NOW + datetime.timedelta(hours=1), kind="safety")
    assert B.resolve_backup(root, "shop", "latest")["backup_id"] == "b2"
    assert B.resolve_backup(root, "shop", "b1")["backup_id"] == "b1"
    assert B.resolve_backup(root, "shop", "s1")["kind"] == "safety"


@pytest.mark.parametrize("stack, backup_id, message", [
    ("shop", "nope", "backup_id nope is not a backup of stack shop.*backups: b1"),
    ("shop", "../shop/b1", "backup_id='../shop/b1' is not allowed"),
    ("shop", "..", "not allowed"),
    ("../etc", "latest", "stack='../etc' is not allowed"),
    ("ghost", "latest", "there are no backups of stack ghost"),
])
def test_resolve_backup_refuses_unknown_traversal_and_missing_stack(tmp_path, stack, backup_id, message):
    backup_on_disk(str(tmp_path), "b1")
    with pytest.raises(A.BackupError, match=message):
        B.resolve_backup(str(tmp_path), stack, backup_id)


def test_resolve_latest_without_a_valid_backup(tmp_path):
    directory = backup_on_disk(str(tmp_path), "b1")
    os.unlink(os.path.join(directory, "volumes/dbdata.tar.zst"))
    os.mkdir(os.path.join(str(tmp_path), "shop", "b2.partial"))
    with pytest.raises(A.BackupError, match="no complete, valid backup"):
        B.resolve_backup(str(tmp_path), "shop", "latest")
    with pytest.raises(A.BackupError, match="b2 is not a backup"):
        B.resolve_backup(str(tmp_path), "shop", "b2")


def test_check_backup_refuses_a_flipped_byte_naming_the_file(tmp_path):
    files = {"volumes/dbdata.tar.zst": (b"archive", False), "volumes/webdata.tar.zst": (b"web", False)}
    directory = backup_on_disk(str(tmp_path), "b1", files=files)
    with open(os.path.join(directory, "volumes/dbdata.tar.zst"), "r+b") as handle:
        handle.seek(3)
        handle.write(b"X")
    entry = B.resolve_backup(str(tmp_path), "shop", "b1")
    with pytest.raises(A.ChecksumError) as info:
        B.check_backup(entry)
    assert "nothing was changed" in str(info.value)
    assert [p.split(":")[0] for p in info.value.problems] == ["volumes/dbdata.tar.zst"]


def test_check_backup_refuses_an_invalid_manifest(tmp_path):
    directory = backup_on_disk(str(tmp_path), "b1")
    with open(os.path.join(directory, A.MANIFEST_NAME), "w") as handle:
        handle.write('{"format": 1, "backup_id": "b1", "stack": "shop", "created": "2026-11-22T04:30:12Z", '
                     '"files": [{"path": "../../etc/shadow", "size": 1, "sha256": "%s"}]}' % ("0" * 64))
    entry = B.resolve_backup(str(tmp_path), "shop", "b1")
    with pytest.raises(A.ChecksumError, match="manifest is invalid"):
        B.check_backup(entry)


def encrypted_backup(tmp_path, identity):
    recipients = A.parse_recipients([str(identity.to_public())])
    env = A.encrypt_bytes(b"APP_SECRET=s3cret\n", recipients)
    archive = A.encrypt_bytes(b"tar bytes", recipients)
    backup_on_disk(str(tmp_path), "b1", files={"config/.env.age": (env, True), "volumes/dbdata.tar.zst.age": (archive, True)},
                   encryption={"type": "age", "recipients": [str(identity.to_public())]})
    return B.resolve_backup(str(tmp_path), "shop", "b1")


def test_check_backup_of_an_encrypted_backup(tmp_path):
    pyrage = pytest.importorskip("pyrage")
    identity = pyrage.x25519.Identity.generate()
    entry = encrypted_backup(tmp_path, identity)
    with pytest.raises(A.BackupError, match="is encrypted with age.*set age_identity_file.*nothing was changed"):
        B.check_backup(entry)
    other = pyrage.x25519.Identity.generate()
    with pytest.raises(A.BackupError, match="is not one backup b1 was encrypted to.*nothing was changed"):
        B.check_backup(entry, str(other), "/keys/other")
    manifest, identities = B.check_backup(entry, "# key\n%s\n" % identity, "/keys/right")
    assert manifest["backup_id"] == "b1" and len(identities) == 1
    record = {"file": "config/.env.age", "path": ".env"}
    assert B.read_config_copy(entry, record, identities) == b"APP_SECRET=s3cret\n"


def test_check_backup_proves_the_identity_by_decrypting(tmp_path):
    pyrage = pytest.importorskip("pyrage")
    identity = pyrage.x25519.Identity.generate()
    other = pyrage.x25519.Identity.generate()
    entry = encrypted_backup(tmp_path, identity)
    entry["manifest"]["encryption"]["recipients"] = []  # a manifest that doesn't say: the probe decides
    with pytest.raises(A.BackupError, match=r"can't decrypt \S+\.age of backup b1 .*nothing was changed"):
        B.check_backup(entry, str(other), "/keys/other")


# -- files a restore writes -----------------------------------------------------------------
def test_write_config_file_is_atomic_with_the_mode(tmp_path):
    target = tmp_path / "p" / ".env"
    B.write_config_file(str(target), b"A=1\n", 0o600)
    assert target.read_bytes() == b"A=1\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    B.write_config_file(str(target), b"A=2\n", 0o640)
    assert target.read_bytes() == b"A=2\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(str(tmp_path / "p")) == [".env"]


def test_empty_directory_keeps_the_directory(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "outside").write_text("keep")
    os.symlink(str(tmp_path / "outside"), str(tmp_path / "d" / "link"))
    B.empty_directory(str(tmp_path / "d"))
    assert os.listdir(str(tmp_path / "d")) == []
    assert (tmp_path / "outside").read_text() == "keep"


# -- off-host copy ----------------------------------------------------------------------------
def test_copy_backup_verifies_and_prunes(tmp_path):
    source_root = str(tmp_path / "a")
    source = backup_on_disk(source_root, "b2", files={"volumes/x.tar.zst": (b"x" * 1000, False)})
    manifest = A.read_manifest(source)[0]
    dest_root = str(tmp_path / "share")
    backup_on_disk(dest_root, "b0", created=NOW - datetime.timedelta(days=10))
    backup_on_disk(dest_root, "b1", created=NOW - datetime.timedelta(days=5))
    path, pruned = B.copy_backup(source, manifest, dest_root, "shop", keep=2)
    assert path == os.path.join(dest_root, "shop", "b2") and pruned == ["b0"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(path, "volumes/x.tar.zst")).st_mode) == 0o600
    assert A.verify_files(path, manifest) == []
    # a second copy of the same backup is a no-op
    assert B.copy_backup(source, manifest, dest_root, "shop") == (path, [])


def test_copy_backup_refuses_a_source_that_changed(tmp_path):
    source = backup_on_disk(str(tmp_path / "a"), "b1", files={"v": (b"abc", False)})
    manifest = A.read_manifest(source)[0]
    with open(os.path.join(source, "v"), "wb") as handle:
        handle.write(b"abd")
    with pytest.raises(A.ChecksumError, match="v: sha256"):
        B.copy_backup(source, manifest, str(tmp_path / "share"), "shop")
    assert os.listdir(str(tmp_path / "share" / "shop")) == [".lock"]


# -- streams to and from processes -------------------------------------------------------------
class FakeModule:
    def __init__(self):
        self.calls = []

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv, **kwargs):
        self.calls.append(argv)
        return 0, "", ""


class FakeCli:
    docker = "/usr/bin/docker"
    project_name = "shop"


def engine():
    return B.Engine(FakeModule(), FakeCli())


def test_archive_streams_a_process_into_a_checksummed_file(tmp_path):
    source = tmp_path / "data"
    source.write_bytes(b"some rows\n" * 10000)
    info, warning = engine().archive(str(tmp_path / "out.zst"), ["cat", str(source)], "Archiving", "zstd", None, [])
    assert warning is None and info["raw_size"] == 100000
    assert A.sha256_file(str(tmp_path / "out.zst")) == (info["size"], info["sha256"])
    out = io.BytesIO()
    with open(str(tmp_path / "out.zst"), "rb") as handle:
        A.decompress_stream(handle, out, "zstd")
    assert out.getvalue() == source.read_bytes()


def test_archive_fails_with_the_command_and_its_error(tmp_path):
    with pytest.raises(A.BackupError, match=r"Archiving volume x failed \(rc=3.*boom"):
        engine().archive(str(tmp_path / "o"), ["sh", "-c", "echo boom >&2; exit 3"], "Archiving volume x", "gzip", None, [])


def test_archive_turns_a_warning_exit_code_into_a_warning(tmp_path):
    info, warning = engine().archive(str(tmp_path / "o"), ["sh", "-c", "echo changed >&2; exit 1"], "Archiving", "gzip",
                                     None, [], warn_codes=(1,))
    assert warning == "Archiving: exit code 1: changed" and info["raw_size"] == 0


def test_archive_names_the_file_when_the_disk_is_full(tmp_path, monkeypatch):
    def full(source, target, *args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(A, "compress_stream", full)
    with pytest.raises(A.BackupError, match="writing .*/o failed: .*No space left on device"):
        engine().archive(str(tmp_path / "o"), ["sh", "-c", "yes | head -c 10000000"], "Archiving volume x", "zstd", None, [])


def test_feed_decompresses_into_a_process(tmp_path):
    packed = io.BytesIO()
    A.compress_stream(io.BytesIO(b"line\n" * 1000), packed, "zstd")
    (tmp_path / "in.zst").write_bytes(packed.getvalue())
    engine().feed(["sh", "-c", "cat > %s" % (tmp_path / "out")], "Feeding", str(tmp_path / "in.zst"), "zstd", None)
    assert (tmp_path / "out").read_bytes() == b"line\n" * 1000


def test_feed_reports_a_command_that_stops_reading(tmp_path):
    packed = io.BytesIO()
    A.compress_stream(io.BytesIO(os.urandom(8 << 20)), packed, "zstd", level=1)
    (tmp_path / "in.zst").write_bytes(packed.getvalue())
    with pytest.raises(A.BackupError, match="Feeding"):
        engine().feed(["sh", "-c", "echo nope >&2; exit 2"], "Feeding", str(tmp_path / "in.zst"), "zstd", None)


def test_helper_refuses_mount_sources_docker_cannot_parse():
    with pytest.raises(A.BackupError, match="--mount"):
        engine().create_helper("img", "/srv/a,b", "bind", True)

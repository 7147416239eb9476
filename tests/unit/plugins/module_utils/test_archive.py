# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups on disk: names, streams, checksums, the manifest, listing and retention."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 22, 4, 30, 12, tzinfo=UTC)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def a_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_backup(directory, backup_id, files, stack="shop", created=NOW, kind="backup", **extra):
    """A finished backup on disk with a matching manifest."""
    path = os.path.join(directory, backup_id)
    os.makedirs(path)
    entries = []
    for name, data in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        entries.append(A.file_entry(name, len(data), sha(data), "volume"))
    manifest = {"format": A.FORMAT_VERSION, "kind": kind, "backup_id": backup_id, "stack": stack,
                "created": A.format_time(created), "files": entries}
    manifest.update(extra)
    with open(os.path.join(path, A.MANIFEST_NAME), "wb") as handle:
        handle.write(A.manifest_bytes(manifest))
    return path, manifest


# -- names ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["shop", "20261122T043012Z", "20261122T043012Z-2", "a.b_c-d", "A1"])
def test_check_name_accepts_plain_names(value):
    assert A.check_name(value, "stack") == value


@pytest.mark.parametrize("value", ["", "..", "../etc", "a/b", "/abs", ".hidden", "-x", "a..b", "a b", "x" * 129,
                                   "shop\n", "$(id)"])
def test_check_name_refuses_traversal_and_odd_names_naming_the_option(value):
    with pytest.raises(A.BackupError, match="backup_id"):
        A.check_name(value, "backup_id")


def test_check_name_refuses_non_strings():
    with pytest.raises(A.BackupError, match="stack"):
        A.check_name(None, "stack")


@pytest.mark.parametrize("value", ["volumes/db.tar.zst", "config/.env", "config/deploy/compose.prod.yml"])
def test_check_relpath_accepts_paths_inside(value):
    assert A.check_relpath(value) == value


@pytest.mark.parametrize("value", ["", "/etc/passwd", "../x", "volumes/../../x", "a//b", "./a", "a/", "a b/c"])
def test_check_relpath_refuses_paths_that_leave_or_are_odd(value):
    with pytest.raises(A.BackupError):
        A.check_relpath(value)


def test_stack_dir_refuses_traversal():
    with pytest.raises(A.BackupError, match="stack"):
        A.stack_dir("/var/backups", "../../etc")
    assert A.stack_dir("/var/backups", "shop") == "/var/backups/shop"


def test_new_backup_id_is_utc_and_suffixed_on_collision():
    local = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert A.new_backup_id(local, set()) == "20261122T043012Z"
    assert A.new_backup_id(NOW, {"20261122T043012Z"}) == "20261122T043012Z-1"
    assert A.new_backup_id(NOW, {"20261122T043012Z", "20261122T043012Z-1"}) == "20261122T043012Z-2"


def test_time_round_trip_and_garbage():
    assert A.parse_time(A.format_time(NOW)) == NOW
    assert A.parse_time("yesterday") is None
    assert A.parse_time(None) is None


def test_collection_version_matches_galaxy_yml():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        versions = [line.split(":", 1)[1].strip().strip("'\"") for line in handle if line.startswith("version:")]
    assert versions == [A.COLLECTION_VERSION]


# -- private files ----------------------------------------------------------------------
def test_private_dir_and_file_modes_ignore_the_umask(tmp_path):
    old = os.umask(0)
    try:
        target = tmp_path / "root" / "shop"
        assert A.ensure_private_dir(str(target)) is True
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
        assert A.ensure_private_dir(str(target)) is False
        os.chmod(target, 0o755)
        assert A.ensure_private_dir(str(target)) is True
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
        size, digest = A.write_file(str(target / "f"), b"secret")
        assert (size, digest) == (6, sha(b"secret"))
        assert stat.S_IMODE(os.stat(target / "f").st_mode) == 0o600
        with pytest.raises(FileExistsError):
            A.open_private(str(target / "f"))
    finally:
        os.umask(old)


def test_private_dir_refuses_a_shared_directory(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(A.BackupError, match="shared directory"):
        A.ensure_private_dir(str(shared))
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777


def test_remove_tree_reports_instead_of_raising(tmp_path):
    assert A.remove_tree(str(tmp_path / "absent")) is None
    (tmp_path / "d").mkdir()
    assert A.remove_tree(str(tmp_path / "d")) is None
    assert not (tmp_path / "d").exists()


def test_stack_lock_is_exclusive(tmp_path):
    with A.stack_lock(str(tmp_path)):
        with pytest.raises(A.BackupError, match="another backup or restore"):
            with A.stack_lock(str(tmp_path)):
                pass
    with A.stack_lock(str(tmp_path)):
        pass


# -- streams ----------------------------------------------------------------------------
PAYLOAD = a_tar({"volume/a.txt": b"row 1\n" * 5000, "volume/b.bin": os.urandom(200000)})


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_compress_then_decompress_round_trips_and_hashes_what_is_written(tmp_path, compression):
    target = tmp_path / "v.tar"
    with A.open_private(str(target)) as handle:
        writer = A.HashingWriter(handle)
        raw = A.compress_stream(io.BytesIO(PAYLOAD), writer, compression)
    assert raw == len(PAYLOAD)
    assert A.sha256_file(str(target)) == (writer.size, writer.hexdigest())
    out = io.BytesIO()
    with open(target, "rb") as handle:
        A.decompress_stream(handle, out, compression)
    assert out.getvalue() == PAYLOAD


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_encrypted_stream_round_trips_with_the_identity_and_refuses_another(tmp_path, compression):
    pyrage = pytest.importorskip("pyrage")
    identity = pyrage.x25519.Identity.generate()
    other = pyrage.x25519.Identity.generate()
    recipients = A.parse_recipients([str(identity.to_public())])
    target = tmp_path / "v.tar.age"
    with A.open_private(str(target)) as handle:
        writer = A.HashingWriter(handle)
        A.compress_stream(io.BytesIO(PAYLOAD), writer, compression, recipients=recipients)
    data = target.read_bytes()
    assert data.startswith(b"age-encryption.org/v1")
    assert sha(data) == writer.hexdigest()  # the checksum is over the ciphertext
    out = io.BytesIO()
    with open(target, "rb") as handle:
        A.decompress_stream(handle, out, compression, identities=[identity])
    assert out.getvalue() == PAYLOAD
    with open(target, "rb") as handle, pytest.raises(A.BackupError, match="age decryption failed"):
        A.decompress_stream(handle, io.BytesIO(), compression, identities=[other])


def test_truncated_gzip_is_an_error():
    buf = io.BytesIO()
    A.compress_stream(io.BytesIO(PAYLOAD), buf, "gzip")
    with pytest.raises(A.BackupError, match="ends early"):
        A.decompress_stream(io.BytesIO(buf.getvalue()[:-20]), io.BytesIO(), "gzip")


def test_unknown_compression_is_refused():
    with pytest.raises(A.BackupError, match="unknown compression"):
        A.compress_stream(io.BytesIO(b""), io.BytesIO(), "lzma")
    with pytest.raises(A.BackupError, match="unknown compression"):
        A.decompress_stream(io.BytesIO(b""), io.BytesIO(), "lzma")


def test_missing_library_is_named(monkeypatch):
    monkeypatch.setattr(A, "HAS_ZSTANDARD", False)
    monkeypatch.setattr(A, "HAS_PYRAGE", False)
    with pytest.raises(A.BackupError, match="zstandard"):
        A.require_libs("zstd", False)
    with pytest.raises(A.BackupError, match="pyrage"):
        A.require_libs("gzip", True)
    A.require_libs("gzip", False)


def test_recipients_and_identities_are_checked():
    pyrage = pytest.importorskip("pyrage")
    with pytest.raises(A.BackupError, match="age1bogus"):
        A.parse_recipients(["age1bogus"])
    identity = pyrage.x25519.Identity.generate()
    text = "# created: today\n# public key: %s\n%s\n" % (identity.to_public(), identity)
    loaded = A.load_identities(text, "/k")
    assert A.public_keys(loaded) == [str(identity.to_public())]
    with pytest.raises(A.BackupError, match="holds no age identity"):
        A.load_identities("# nothing\n", "/k")
    with pytest.raises(A.BackupError, match="not an age X25519 identity"):
        A.load_identities("AGE-SECRET-KEY-1NOPE\n", "/k")


def test_bytes_encryption_round_trip_and_wrong_key():
    pyrage = pytest.importorskip("pyrage")
    identity = pyrage.x25519.Identity.generate()
    blob = A.encrypt_bytes(b"APP_SECRET=x\n", A.parse_recipients([str(identity.to_public())]))
    assert A.decrypt_bytes(blob, [identity], ".env") == b"APP_SECRET=x\n"
    with pytest.raises(A.BackupError, match="decrypting .env failed"):
        A.decrypt_bytes(blob, [pyrage.x25519.Identity.generate()], ".env")


# -- manifest ---------------------------------------------------------------------------
def good_manifest():
    return {"format": 1, "kind": "backup", "backup_id": "b1", "stack": "shop", "created": "2026-11-22T04:30:12Z",
            "files": [A.file_entry("volumes/db.tar.zst", 3, sha(b"abc"), "volume", False, "zstd", 10)],
            "encryption": None}


def test_validate_manifest_accepts_a_good_one():
    assert A.validate_manifest(good_manifest(), backup_id="b1", stack="shop") == []


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.update(format=2), "format"),
    (lambda m: m.pop("files"), "files is missing"),
    (lambda m: m.update(backup_id="b2"), "backup_id is 'b2'"),
    (lambda m: m.update(stack="other"), "stack is 'other'"),
    (lambda m: m.update(created="now"), "created"),
    (lambda m: m.update(kind="weird"), "kind"),
    (lambda m: m.update(files="x"), "files is not a list"),
    (lambda m: m["files"].append("x"), "files[1] is not an object"),
    (lambda m: m["files"][0].update(path="../../etc/passwd"), "not allowed"),
    (lambda m: m["files"][0].update(path="/etc/passwd"), "relative path"),
    (lambda m: m["files"].append(dict(m["files"][0])), "listed twice"),
    (lambda m: m["files"][0].update(path="manifest.json"), "names the manifest"),
    (lambda m: m["files"][0].update(size=-1), "size -1"),
    (lambda m: m["files"][0].update(size=True), "size True"),
    (lambda m: m["files"][0].update(sha256="abc"), "64 hex"),
    (lambda m: m["files"][0].update(compression="lzma"), "compression 'lzma'"),
    (lambda m: m.update(encryption={"type": "gpg"}), "encryption"),
])
def test_validate_manifest_names_each_problem(change, problem):
    manifest = good_manifest()
    change(manifest)
    problems = A.validate_manifest(manifest, backup_id="b1", stack="shop")
    assert any(problem in p for p in problems), problems


def test_validate_manifest_refuses_non_objects():
    assert A.validate_manifest([]) == ["manifest is not a JSON object"]


def test_verify_files_names_the_file_that_differs(tmp_path):
    path, manifest = make_backup(str(tmp_path), "b1", {"volumes/db.tar.zst": b"abc", "volumes/web.tar.zst": b"def"})
    assert A.verify_files(path, manifest) == []
    with open(os.path.join(path, "volumes/db.tar.zst"), "r+b") as handle:
        handle.write(b"X")  # flip a byte, same size
    problems = A.verify_files(path, manifest)
    assert len(problems) == 1 and problems[0].startswith("volumes/db.tar.zst: sha256")
    assert A.verify_files(path, manifest, deep=False) == []  # the size still matches
    os.unlink(os.path.join(path, "volumes/web.tar.zst"))
    assert "volumes/web.tar.zst: missing" in A.verify_files(path, manifest)
    with open(os.path.join(path, "volumes/db.tar.zst"), "ab") as handle:
        handle.write(b"more")
    assert any("size 7, the manifest says 3" in p for p in A.verify_files(path, manifest, deep=False))
    assert any("size 7, the manifest says 3" in p for p in A.verify_files(path, manifest, deep=True))


def test_verify_files_does_not_follow_a_symlink(tmp_path):
    path, manifest = make_backup(str(tmp_path), "b1", {"v": b"abc"})
    os.unlink(os.path.join(path, "v"))
    (tmp_path / "elsewhere").write_bytes(b"abc")
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(path, "v"))
    assert A.verify_files(path, manifest) == ["v: missing"]


def test_unlisted_files_and_read_manifest(tmp_path):
    path, manifest = make_backup(str(tmp_path), "b1", {"v": b"abc"})
    (tmp_path / "b1" / "extra").write_bytes(b"")
    assert A.unlisted_files(path, manifest) == ["extra"]
    assert A.read_manifest(path) == (manifest, [])
    assert A.read_manifest(str(tmp_path))[1] == ["manifest.json is missing"]
    (tmp_path / "b1" / "manifest.json").write_bytes(b"{not json")
    assert "can't be read" in A.read_manifest(path)[1][0]


# -- listing ----------------------------------------------------------------------------
def test_scan_stack_orders_and_marks_partial_invalid_and_foreign(tmp_path):
    d = str(tmp_path)
    make_backup(d, "20261120T000000Z", {"v": b"1"}, created=NOW - datetime.timedelta(days=2))
    make_backup(d, "20261122T043012Z-10", {"v": b"3"}, created=NOW)
    make_backup(d, "20261122T043012Z-2", {"v": b"2"}, created=NOW)
    make_backup(d, "20261121T000000Z", {"v": b"x"}, stack="other", created=NOW - datetime.timedelta(days=1))
    os.mkdir(os.path.join(d, "20261122T050000Z.partial"))
    os.mkdir(os.path.join(d, "..weird"))
    (tmp_path / ".lock").write_bytes(b"")
    entries = A.scan_stack(d, "shop")
    assert [e["backup_id"] for e in entries] == ["20261122T050000Z", "20261120T000000Z", "20261121T000000Z",
                                                 "20261122T043012Z-2", "20261122T043012Z-10"]
    by_id = dict((e["backup_id"], e) for e in entries)
    assert by_id["20261122T050000Z"]["partial"] and not by_id["20261122T050000Z"]["valid"]
    assert not by_id["20261121T000000Z"]["valid"]
    assert "stack is 'other'" in by_id["20261121T000000Z"]["problems"][0]
    assert by_id["20261122T043012Z-10"]["valid"]
    assert A.latest_good(entries)["backup_id"] == "20261122T043012Z-10"
    assert A.scan_stack(os.path.join(d, "absent"), "shop") == []


def test_scan_stack_deep_check_finds_a_flipped_byte(tmp_path):
    path, _manifest = make_backup(str(tmp_path), "b1", {"v": b"abc"})
    with open(os.path.join(path, "v"), "r+b") as handle:
        handle.write(b"X")
    assert A.scan_stack(str(tmp_path), "shop")[0]["valid"] is True
    entry = A.scan_stack(str(tmp_path), "shop", verify_checksums=True)[0]
    assert entry["valid"] is False and entry["problems"][0].startswith("v: sha256")


def test_latest_good_skips_safety_backups_and_invalid_ones(tmp_path):
    d = str(tmp_path)
    make_backup(d, "b1", {"v": b"1"}, created=NOW - datetime.timedelta(hours=2))
    make_backup(d, "b2", {"v": b"2"}, created=NOW - datetime.timedelta(hours=1), kind="safety")
    path, _m = make_backup(d, "b3", {"v": b"3"}, created=NOW)
    os.unlink(os.path.join(path, "v"))
    entries = A.scan_stack(d, "shop")
    assert A.latest_good(entries)["backup_id"] == "b1"
    assert A.latest_good(entries, kind="safety")["backup_id"] == "b2"
    assert A.latest_good(entries, kind=None)["backup_id"] == "b2"
    assert A.latest_good([]) is None


def test_summary_of_a_backup(tmp_path):
    make_backup(str(tmp_path), "b1", {"volumes/db.tar.zst": b"abc", "dumps/app.sql.zst": b"de"},
                volumes=[{"key": "db"}], hooks=[{"name": "app"}], encryption={"type": "age", "recipients": ["age1x"]},
                collection={"name": "ops.rollback", "version": "0.1.0"})
    s = A.summary(A.scan_stack(str(tmp_path), "shop")[0])
    assert s["valid"] and s["encrypted"] and s["recipients"] == ["age1x"]
    assert (s["volumes"], s["dumps"], s["file_count"], s["size"]) == (["db"], ["app"], 2, 5)
    assert s["collection_version"] == "0.1.0"


# -- retention --------------------------------------------------------------------------
def entry(backup_id, days_old, valid=True, kind="backup", partial=False):
    return {"backup_id": backup_id, "created": NOW - datetime.timedelta(days=days_old), "valid": valid,
            "kind": kind, "partial": partial}


def test_keep_prunes_beyond_the_newest_n():
    entries = [entry("b%d" % i, 10 - i) for i in range(1, 6)]  # b5 is the newest
    assert sorted(A.select_prune(entries, keep=2, now=NOW)) == ["b1", "b2", "b3"]
    assert A.select_prune(entries, keep=10, now=NOW) == []


def test_max_age_prunes_old_ones():
    entries = [entry("old", 40), entry("mid", 20), entry("new", 1)]
    assert A.select_prune(entries, max_age_days=30, now=NOW) == ["old"]


def test_keep_and_max_age_together_prune_what_either_says():
    entries = [entry("a", 40), entry("b", 3), entry("c", 2), entry("d", 1)]
    assert sorted(A.select_prune(entries, keep=3, max_age_days=30, now=NOW)) == ["a"]
    assert sorted(A.select_prune(entries, keep=2, max_age_days=30, now=NOW)) == ["a", "b"]


def test_nothing_is_pruned_without_a_rule():
    assert A.select_prune([entry("a", 400), entry("b", 1)], now=NOW) == []


def test_the_last_good_backup_is_never_pruned_even_when_everything_is_too_old():
    entries = [entry("a", 90), entry("b", 60)]
    assert A.select_prune(entries, max_age_days=30, now=NOW) == ["a"]


def test_the_last_good_backup_survives_newer_broken_ones():
    entries = [entry("good", 5), entry("bad1", 2, valid=False), entry("bad2", 1, valid=False)]
    assert sorted(A.select_prune(entries, keep=1, now=NOW)) == ["bad1"]


def test_safety_backups_count_but_never_stand_in_for_the_last_good_backup():
    entries = [entry("good", 5), entry("s1", 2, kind="safety"), entry("s2", 1, kind="safety")]
    assert sorted(A.select_prune(entries, keep=1, now=NOW)) == ["s1"]


def test_protected_ids_and_partials_are_left_alone():
    entries = [entry("a", 5), entry("b", 4), entry("new", 0), entry("p", 9, partial=True)]
    assert sorted(A.select_prune(entries, keep=1, now=NOW, protect=["a"])) == ["b"]


def test_a_backup_without_a_time_counts_as_too_old():
    broken = {"backup_id": "x", "created": None, "valid": False, "kind": None, "partial": False}
    assert A.select_prune([broken, entry("new", 0)], max_age_days=1, now=NOW) == ["x"]


@pytest.mark.parametrize("kwargs, message", [({"keep": 0}, "keep"), ({"max_age_days": -1}, "max_age_days")])
def test_bad_retention_values_are_refused(kwargs, message):
    with pytest.raises(A.BackupError, match=message):
        A.select_prune([], now=NOW, **kwargs)


def test_checksum_error_names_every_file():
    exc = A.ChecksumError("Backup b1 failed", ["a: missing", "b: sha256 x"])
    assert str(exc) == "Backup b1 failed: a: missing; b: sha256 x"
    assert exc.problems == ["a: missing", "b: sha256 x"]


def test_manifest_bytes_is_stable_json():
    data = A.manifest_bytes({"b": 1, "a": [1]})
    assert json.loads(data) == {"a": [1], "b": 1} and data.endswith(b"\n")

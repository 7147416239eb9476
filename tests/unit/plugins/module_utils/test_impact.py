# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The impact report: .env parsing and masking, config diff, image/migration changes, downtime."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._impact import (
    MASK,
    config_diff,
    env_changes,
    estimate_downtime,
    image_changes,
    mask_text,
    masked_config,
    migration_changes,
    parse_dotenv,
    render,
    secret_values,
)

SECRET = "s3cr3t-P4ssw0rd"
OTHER_SECRET = "tok_9f8e7d6c"


# -- parse_dotenv --------------------------------------------------------------------------
def test_parse_dotenv_reads_key_value_pairs_from_bytes():
    assert parse_dotenv(b"A=1\nB=two\n") == {"A": "1", "B": "two"}


def test_parse_dotenv_reads_str_and_none():
    assert parse_dotenv("A=1") == {"A": "1"}
    assert parse_dotenv(None) == {}
    assert parse_dotenv(b"") == {}


def test_parse_dotenv_skips_comments_blank_and_malformed_lines():
    data = "# comment\n\n   # indented comment\nnot a pair\n1BAD=x\nGOOD=yes\n"
    assert parse_dotenv(data) == {"GOOD": "yes"}


def test_parse_dotenv_accepts_export_prefix_and_spaces():
    assert parse_dotenv("export A=1\n  B = 2 \n") == {"A": "1", "B": "2"}


@pytest.mark.parametrize("line, value", [
    ('A="double quoted"', "double quoted"),
    ("A='single quoted'", "single quoted"),
    ('A="with # hash"', "with # hash"),
    ('A=""', ""),
    ('A="', '"'),
])
def test_parse_dotenv_strips_matching_quotes(line, value):
    assert parse_dotenv(line) == {"A": value}


def test_parse_dotenv_drops_an_inline_comment_of_an_unquoted_value():
    assert parse_dotenv("A=value # note\nB=a#b\n") == {"A": "value", "B": "a#b"}


def test_parse_dotenv_strips_quotes_before_an_inline_comment():
    env = parse_dotenv('PW="hunter22" # prod password')
    assert env == {"PW": "hunter22"}
    # what this costs: Compose interpolates hunter22 into the config, and the diff shows it
    diff = config_diff(_cfg("web:1", {}), _cfg("web:2", {}, command=["--pw=hunter22"]), secret_values(env))
    assert "hunter22" not in diff


def test_parse_dotenv_later_key_wins():
    assert parse_dotenv("A=1\nA=2\n") == {"A": "2"}


# -- env_changes ---------------------------------------------------------------------------
def test_env_changes_lists_keys_sorted():
    old = {"KEEP": "1", "GONE": "x", "CHANGED": "a", "Z": "same"}
    new = {"KEEP": "1", "NEW": "y", "CHANGED": "b", "Z": "same", "ANEW": "z"}
    assert env_changes(old, new) == {"added": ["ANEW", "NEW"], "removed": ["GONE"], "changed": ["CHANGED"]}


def test_env_changes_never_contain_values():
    changes = env_changes({"PW": SECRET}, {"PW": OTHER_SECRET, "TOKEN": "tok-added-value"})
    text = json.dumps(changes)
    for value in (SECRET, OTHER_SECRET, "tok-added-value"):
        assert value not in text


# -- secret_values / mask_text --------------------------------------------------------------
def test_secret_values_skips_short_values():
    assert secret_values({"A": "1", "B": "on", "C": "abc", "D": ""}) == ["abc"]


def test_secret_values_are_unique_longest_first_across_envs():
    assert secret_values({"A": "abc", "B": "abcdef"}, {"C": "abcdef", "D": "abcd"}) == ["abcdef", "abcd", "abc"]


def test_mask_text_masks_a_containing_value_whole():
    secrets = secret_values({"SHORT": "pass", "LONG": "pass-word-long"})
    assert mask_text("x=pass-word-long y=pass", secrets) == "x=%s y=%s" % (MASK, MASK)


def test_mask_text_without_secrets_is_unchanged():
    assert mask_text("nothing here", []) == "nothing here"


# -- masked_config ---------------------------------------------------------------------------
def test_masked_config_masks_dict_environment_values_keeping_none():
    config = {"services": {"web": {"environment": {"PW": SECRET, "UNSET": None}}}}
    assert masked_config(config)["services"]["web"]["environment"] == {"PW": MASK, "UNSET": None}


def test_masked_config_masks_list_environment_values():
    config = {"services": {"web": {"environment": ["PW=" + SECRET, "EQ=a=b", "BARE"]}}}
    assert masked_config(config)["services"]["web"]["environment"] == ["PW=" + MASK, "EQ=" + MASK, "BARE"]


def test_masked_config_does_not_modify_its_input():
    config = {"services": {"web": {"environment": {"PW": SECRET}}}}
    masked_config(config)
    assert config["services"]["web"]["environment"]["PW"] == SECRET


def test_masked_config_handles_empty_input_and_services_without_environment():
    assert masked_config(None) == {}
    assert masked_config({"services": {"web": {"image": "web:1"}}}) == {"services": {"web": {"image": "web:1"}}}


# -- config_diff ----------------------------------------------------------------------------
def _cfg(image, env, command=None):
    svc = {"image": image, "environment": env}
    if command:
        svc["command"] = command
    return {"services": {"web": svc}}


def test_config_diff_is_empty_for_identical_configs():
    cfg = _cfg("web:1", {"PW": SECRET})
    assert config_diff(cfg, cfg, [SECRET]) == ""


def test_config_diff_shows_changes_with_names():
    diff = config_diff(_cfg("web:1", {}), _cfg("web:2", {}), [], old_name="cur", new_name="tgt")
    assert diff.startswith("--- cur\n+++ tgt")
    assert any(line.startswith("-") and '"web:1"' in line for line in diff.splitlines())
    assert any(line.startswith("+") and '"web:2"' in line for line in diff.splitlines())


def test_config_diff_never_shows_environment_values_even_if_not_in_env_file():
    diff = config_diff(_cfg("web:1", {"PW": SECRET}), _cfg("web:2", ["PW=" + OTHER_SECRET]), [])
    assert diff
    assert SECRET not in diff and OTHER_SECRET not in diff


def test_config_diff_masks_env_file_values_anywhere():
    old = _cfg("web:1", {}, command=["serve", "--token=" + SECRET])
    new = _cfg("web:2", {}, command=["serve", "--token=" + OTHER_SECRET, "--db=postgres://u:%s@db" % SECRET])
    secrets = secret_values({"TOKEN": SECRET}, {"TOKEN": OTHER_SECRET})
    diff = config_diff(old, new, secrets)
    assert "--token=" + MASK in diff
    assert SECRET not in diff and OTHER_SECRET not in diff


def test_config_diff_masks_the_file_names_too():
    diff = config_diff({"a": 1}, {"a": 2}, [SECRET], old_name="release-" + SECRET, new_name="tgt")
    assert SECRET not in diff


@pytest.mark.parametrize("secret", ['pa"ss\\word', "pässwörd-geheim"])
def test_config_diff_masks_env_file_values_that_json_escapes(secret):
    new = _cfg("web:2", {}, command=["--password=" + secret])
    diff = config_diff(_cfg("web:1", {}), new, secret_values({"PW": secret}))
    assert secret not in diff
    assert json.dumps(secret)[1:-1] not in diff


# -- image_changes -------------------------------------------------------------------------
def test_image_changes_classifies_every_service_sorted():
    current = {"web": {"image": "web:2", "image_id": "sha256:b"}, "db": {"image": "pg:16", "image_id": "sha256:d"},
               "old": {"image": "old:1", "image_id": "sha256:o"}}
    target = {"web": {"image": "web:1", "image_id": "sha256:a"}, "db": {"image": "pg:16", "image_id": "sha256:d"},
              "new": {"image": "new:1", "image_id": "sha256:n"}}
    changes = {c["service"]: c for c in image_changes(current, target)}
    assert [c["service"] for c in image_changes(current, target)] == ["db", "new", "old", "web"]
    assert changes["web"]["change"] == "changed"
    assert changes["web"]["from"] == {"image": "web:2", "image_id": "sha256:b"}
    assert changes["web"]["to"] == {"image": "web:1", "image_id": "sha256:a"}
    assert changes["db"]["change"] == "unchanged"
    assert changes["new"]["change"] == "added" and changes["new"]["from"] is None
    assert changes["old"]["change"] == "removed" and changes["old"]["to"] is None


def test_image_changes_same_tag_different_id_is_changed():
    changes = image_changes({"web": {"image": "web:latest", "image_id": "sha256:a"}},
                            {"web": {"image": "web:latest", "image_id": "sha256:b"}})
    assert changes[0]["change"] == "changed"


# -- migration_changes -----------------------------------------------------------------------
def test_migration_changes_lists_added_removed_and_changed_sorted():
    current = {"m/001.sql": "a", "m/002.sql": "b", "m/003.sql": "c"}
    target = {"m/001.sql": "a", "m/002.sql": "B", "m/000.sql": "z"}
    assert migration_changes(current, target) == ["m/000.sql", "m/002.sql", "m/003.sql"]


def test_migration_changes_with_none_sides():
    assert migration_changes(None, None) == []
    assert migration_changes(None, {"m/1.sql": "a"}) == ["m/1.sql"]


# -- estimate_downtime -------------------------------------------------------------------------
def h(downtime, strategy="recreate", status="succeeded"):
    return {"strategy": strategy, "status": status, "downtime_s": downtime}


def test_estimate_downtime_without_history_is_unknown():
    est = estimate_downtime([], "recreate")
    assert est["seconds"] is None
    assert "no earlier recreate rollback" in est["basis"]


def test_estimate_downtime_is_median_of_last_five_successful_of_the_strategy():
    history = [h(100), h(100), h(100), h(1), h(2), h(3), h(4), h(5),
               h(999, status="failed"), h(999, strategy="blue-green"), h(None)]
    est = estimate_downtime(history, "recreate")
    assert est["seconds"] == 3
    assert est["basis"] == "median of the last 5 recreate rollbacks of this stack"


def test_estimate_downtime_with_fewer_samples_rounds_the_median():
    est = estimate_downtime([h(1.04), h(2.0)], "recreate")
    assert est["seconds"] == 1.5
    assert "last 2 recreate" in est["basis"]


def test_estimate_downtime_ignores_other_strategies_and_failures():
    est = estimate_downtime([h(5, strategy="blue-green"), h(7, status="failed")], "recreate")
    assert est["seconds"] is None


# -- render ------------------------------------------------------------------------------
def _impact(**overrides):
    impact = {
        "stack": "shop",
        "current": {"id": "c3", "version": "v1.5.0"},
        "target": {"id": "b2", "version": None},
        "images": image_changes(
            {"web": {"image": "web:1.5", "image_id": "sha256:" + "b" * 64},
             "db": {"image": "pg:16", "image_id": "sha256:d"},
             "gone": {"image": "gone:1", "image_id": "sha256:g"}},
            {"web": {"image": "web:1.4", "image_id": "sha256:" + "a" * 64},
             "db": {"image": "pg:16", "image_id": "sha256:d"},
             "back": {"image": "back:1", "image_id": "sha256:" + "c" * 64}}),
        "env": {"added": [], "removed": [], "changed": []},
        "migrations": [],
        "downtime": {"seconds": None, "basis": "no earlier recreate rollback of this stack was recorded"},
        "config_diff": "",
    }
    impact.update(overrides)
    return impact


def test_render_headline_and_image_lines():
    lines = render(_impact())
    assert lines[0] == "Rollback of stack shop: c3 (v1.5.0) -> b2"
    assert "  + back: back:1 [cccccccccccc]" in lines
    assert "  = db: pg:16 (unchanged)" in lines
    assert "  - gone: gone:1 (removed)" in lines
    assert "  ~ web: web:1.5 [bbbbbbbbbbbb] -> web:1.4 [aaaaaaaaaaaa]" in lines


def test_render_without_env_changes_migrations_or_diff():
    lines = render(_impact())
    assert "  .env: no key changes" in lines
    assert not any("WARNING" in line for line in lines)
    assert "  estimated downtime: unknown (no earlier recreate rollback of this stack was recorded)" in lines
    assert lines[-1] == "  resolved config: identical"


def test_render_env_key_changes():
    lines = render(_impact(env={"added": ["A", "B"], "removed": [], "changed": ["PW"]}))
    assert "  .env (values masked): added A, B; removed -; changed PW" in lines


def test_render_warns_about_migrations():
    lines = render(_impact(migrations=["m/002.sql", "m/003.sql"]))
    warning = [line for line in lines if "WARNING" in line]
    assert len(warning) == 1
    assert "m/002.sql, m/003.sql" in warning[0]
    assert "restore_data=true" in warning[0]


def test_render_downtime_and_indented_diff():
    lines = render(_impact(downtime={"seconds": 4.5, "basis": "median"}, config_diff="--- a\n+++ b\n-x\n+y"))
    assert "  estimated downtime: 4.5 s (median)" in lines
    assert lines[-5:] == ["  resolved config diff (secrets masked):", "    --- a", "    +++ b", "    -x", "    +y"]

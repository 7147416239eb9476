# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a rollback changes, for the operator to read before confirming.

Pure functions over two releases: image changes per service, a unified diff of the resolved
config, `.env` keys added/removed/changed, migration files that differ, a downtime estimate.
Secrets never leave here unmasked: every `environment` value in the resolved config is
masked, and so is every `.env` value wherever it appears in the diff.
"""

from __future__ import annotations

import difflib
import json
import re
import statistics

MASK = "********"
MIN_MASKED_LENGTH = 3  # shorter values (1, on, no) would mask half the diff and hide nothing
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")


def parse_dotenv(data):
    """KEY=VALUE pairs of a .env file (bytes or str); comments and blank lines ignored."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    values = {}
    for line in (data or "").splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            continue
        key, value = match.group(1), match.group(2).strip()
        if value[:1] in ("'", '"') and value[0] in value[1:]:
            # Quoted: the value ends at the closing quote; a comment may follow it.
            value = value[1:value.index(value[0], 1)]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def env_changes(old, new):
    """Keys added, removed and changed between two parsed .env maps (never the values)."""
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }


def secret_values(*envs):
    """Every .env value long enough to be worth masking, longest first (so a value that
    contains another is masked whole)."""
    found = {v for env in envs for v in env.values() if len(v) >= MIN_MASKED_LENGTH}
    return sorted(found, key=len, reverse=True)


def mask_text(text, secrets):
    """Mask each secret as it is, and as JSON writes it (quotes, backslashes, non-ASCII
    escaped), since the config diff is made of JSON lines."""
    for value in secrets:
        for form in (value, json.dumps(value)[1:-1]):
            text = text.replace(form, MASK)
    return text


def masked_config(resolved):
    """The resolved config with every service environment value replaced by the mask."""
    config = json.loads(json.dumps(resolved or {}))
    for service in (config.get("services") or {}).values():
        env = service.get("environment")
        if isinstance(env, dict):
            service["environment"] = {k: (MASK if v is not None else None) for k, v in env.items()}
        elif isinstance(env, list):
            service["environment"] = [item.split("=", 1)[0] + "=" + MASK if "=" in item else item for item in env]
    return config


def config_diff(old_resolved, new_resolved, secrets, old_name="current", new_name="target"):
    """Unified diff of two resolved configs, masked."""
    old_lines = json.dumps(masked_config(old_resolved), indent=2, sort_keys=True).splitlines()
    new_lines = json.dumps(masked_config(new_resolved), indent=2, sort_keys=True).splitlines()
    diff = "\n".join(difflib.unified_diff(old_lines, new_lines, old_name, new_name, lineterm="", n=2))
    return mask_text(diff, secrets)


def image_changes(current_services, target_services):
    """Per service: the image reference and ID now and after the rollback."""
    changes = []
    for name in sorted(set(current_services) | set(target_services)):
        cur = current_services.get(name)
        tgt = target_services.get(name)
        if cur is None:
            kind = "added"
        elif tgt is None:
            kind = "removed"
        elif cur.get("image_id") == tgt.get("image_id"):
            kind = "unchanged"
        else:
            kind = "changed"
        changes.append({
            "service": name,
            "change": kind,
            "from": {"image": cur.get("image"), "image_id": cur.get("image_id")} if cur else None,
            "to": {"image": tgt.get("image"), "image_id": tgt.get("image_id")} if tgt else None,
        })
    return changes


def migration_changes(current_sums, target_sums):
    """Migration files that differ between two releases (added, removed or changed)."""
    names = set(current_sums or {}) | set(target_sums or {})
    return sorted(n for n in names if (current_sums or {}).get(n) != (target_sums or {}).get(n))


def estimate_downtime(history, strategy):
    """Median downtime of earlier successful rollbacks with this strategy, or None."""
    samples = [h["downtime_s"] for h in history
               if h.get("strategy") == strategy and h.get("status") == "succeeded" and isinstance(h.get("downtime_s"), (int, float))]
    if not samples:
        return {"seconds": None, "basis": "no earlier %s rollback of this stack was recorded" % strategy}
    recent = samples[-5:]
    return {"seconds": round(statistics.median(recent), 1),
            "basis": "median of the last %d %s rollbacks of this stack" % (len(recent), strategy)}


def short_id(image_id):
    return (image_id or "").replace("sha256:", "")[:12]


def render(impact):
    """The impact as lines of text for the operator."""
    cur, tgt = impact["current"], impact["target"]
    lines = ["Rollback of stack %s: %s%s -> %s%s" % (
        impact["stack"], cur["id"], " (%s)" % cur["version"] if cur.get("version") else "",
        tgt["id"], " (%s)" % tgt["version"] if tgt.get("version") else "")]
    for change in impact["images"]:
        if change["change"] == "unchanged":
            lines.append("  = %s: %s (unchanged)" % (change["service"], change["from"]["image"]))
        elif change["change"] == "changed":
            lines.append("  ~ %s: %s [%s] -> %s [%s]" % (
                change["service"], change["from"]["image"], short_id(change["from"]["image_id"]),
                change["to"]["image"], short_id(change["to"]["image_id"])))
        elif change["change"] == "added":
            lines.append("  + %s: %s [%s]" % (change["service"], change["to"]["image"], short_id(change["to"]["image_id"])))
        else:
            lines.append("  - %s: %s (removed)" % (change["service"], change["from"]["image"]))
    env = impact["env"]
    if any(env.values()):
        lines.append("  .env (values masked): added %s; removed %s; changed %s" % (
            ", ".join(env["added"]) or "-", ", ".join(env["removed"]) or "-", ", ".join(env["changed"]) or "-"))
    else:
        lines.append("  .env: no key changes")
    if impact["migrations"]:
        lines.append("  WARNING: migration files differ between the releases: %s. Rolling back the code does "
                     "not roll back the schema; consider restore_data=true." % ", ".join(impact["migrations"]))
    downtime = impact["downtime"]
    lines.append("  estimated downtime: %s (%s)" % (
        "%s s" % downtime["seconds"] if downtime["seconds"] is not None else "unknown", downtime["basis"]))
    if impact["config_diff"]:
        lines.append("  resolved config diff (secrets masked):")
        lines.extend("    " + line for line in impact["config_diff"].splitlines())
    else:
        lines.append("  resolved config: identical")
    return lines

"""The AWX survey specs (awx/surveys/*.json) against the playbooks they launch.

Every playbooks/*.yml needs awx/surveys/<name>.json. Each survey is checked against what the
playbook really reads, worked out from the playbook itself:
- its argument spec (the `ansible.builtin.validate_argument_spec` task and the vars files or
  `include_vars` tasks that hold it): types, choices, required variables; the answers a survey sends are run through
  Ansible's own ArgumentSpecValidator, as AWX would send them (strings for choices);
- the variables its templates and conditions read, its play vars (extra vars override them) and
  the options of the roles it includes (their meta/argument_specs.yml entry point);
- the variables it asserts are defined (required);
- the confirmation word its header documents (`-e confirm=WORD`).
The job templates, the workflow, the schedules and the credential type (awx/) are checked too.
"""
import copy
import functools
import glob
import json
import os
import re

import jinja2
import jinja2.meta
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX = os.path.join(ROOT, "awx")
PLAYBOOKS = sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# Survey question types that can carry a value of each argument spec type (what AWX sends).
COMPATIBLE = {
    "str": {"text", "textarea", "password", "multiplechoice"},
    "path": {"text", "textarea", "multiplechoice"},
    "raw": {"text", "textarea", "multiplechoice", "integer", "float"},
    "int": {"integer"},
    "float": {"float", "integer"},
    "bool": {"multiplechoice"},
    "list": {"multiselect"},
}
BOOL_CHOICES = {"true", "false"}
TASK_LISTS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")
JINJA = jinja2.Environment()


def name(path):
    return os.path.splitext(os.path.basename(path))[0]


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def load_json(path):
    with open(path) as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=None)
def job_templates():
    return load_yaml(os.path.join(AWX, "job_templates.yml"))


# -- what a playbook reads ------------------------------------------------------------------
def template_names(value):
    """Free variable names of every template (and bare condition) in a YAML value."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("when", "that", "failed_when", "changed_when", "until") and item is not None:
                for cond in item if isinstance(item, list) else [item]:
                    if isinstance(cond, str):
                        found |= parse_names("{{ (%s) }}" % cond)
            else:
                found |= template_names(item)
    elif isinstance(value, list):
        for item in value:
            found |= template_names(item)
    elif isinstance(value, str) and ("{{" in value or "{%" in value):
        found |= parse_names(value)
    return found


def parse_names(text):
    try:
        return jinja2.meta.find_undeclared_variables(JINJA.parse(text))
    except jinja2.TemplateSyntaxError:
        return set()


def iter_tasks(tasks, base):
    """Every task, blocks flattened and static imports (import_tasks) followed."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from iter_tasks(task.get(key), base)
        for key in ("ansible.builtin.import_tasks", "import_tasks"):
            if isinstance(task.get(key), str) and "{{" not in task[key]:
                path = os.path.join(base, task[key])
                yield from iter_tasks(load_yaml(path), os.path.dirname(path))


def role_options(role, entry_point):
    path = os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")
    if not os.path.exists(path):
        return {}
    specs = load_yaml(path)["argument_specs"]
    return (specs.get(entry_point) or {}).get("options", {})


def included_vars(base, task):
    """The variables an include_vars task reads: its file, or each file of its loop
    (file: "{{ item }}"), found where Ansible finds it, in the playbook's vars/ directory."""
    variables = {}
    for name in task.get("loop") or [None]:
        path = os.path.join(base, "vars", name or task["ansible.builtin.include_vars"]["file"])
        assert os.path.exists(path), "%s: include_vars names a file that does not exist: %s" % (base, path)
        variables.update(load_yaml(path) or {})
    return variables


def resolve(value, variables):
    """Replace "{{ _name }}" references to vars-file data (argument specs), recursively."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*\{\{\s*(\w+)\s*\}\}\s*", value)
        if match and match.group(1) in variables:
            return resolve(copy.deepcopy(variables[match.group(1)]), variables)
        return value
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    return value


class Playbook:
    """What a playbook reads: spec (argument spec), accepted, required, role_specs, confirm_word."""

    def __init__(self, path):
        self.path = path
        self.name = name(path)
        base = os.path.dirname(path)
        with open(path) as handle:
            self.text = handle.read()
        self.spec = {}
        self.role_specs = {}
        self.required = set()
        self.accepted = set()
        internal = set()
        for play in yaml.safe_load(self.text) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            variables = {}
            for vars_file in play.get("vars_files", []):
                variables.update(load_yaml(os.path.join(base, vars_file)) or {})
            play_vars = play.get("vars") or {}
            variables.update(play_vars)
            self.accepted |= {k for k in play_vars if not k.startswith("_")}
            self.accepted |= template_names(play)
            tasks = [t for key in TASK_LISTS for t in iter_tasks(play.get(key), base)]
            for task in tasks:
                self.accepted |= template_names(task)
                internal |= set(task.get("vars") or {})
                if task.get("register"):
                    internal.add(task["register"])
                for key, args in task.items():
                    short = key.rsplit(".", 1)[-1]
                    if short == "set_fact" and isinstance(args, dict):
                        internal |= set(args)
                    elif short == "include_vars":
                        variables.update(included_vars(base, task))
                    elif short == "validate_argument_spec":
                        self.spec.update(resolve(args["argument_spec"], variables))
                    elif short in ("include_role", "import_role"):
                        role = args["name"].rsplit(".", 1)[-1]
                        self.role_specs.update(role_options(role, args.get("tasks_from", "main")))
                    elif short == "assert":
                        that = args.get("that")
                        for cond in that if isinstance(that, list) else [that]:
                            self.required |= set(re.findall(r"^\s*(\w+) is defined\b", str(cond)))
        self.required |= {k for k, v in self.spec.items() if v.get("required")}
        self.accepted |= set(self.spec) | set(self.role_specs)
        self.accepted -= internal
        self.accepted = {v for v in self.accepted if not v.startswith("_")}
        words = set(re.findall(r"\bconfirm=([A-Z]{4,})\b", self.text))
        assert len(words) <= 1, "%s documents more than one confirmation word: %s" % (path, words)
        self.confirm_word = words.pop() if words else None

    def option(self, variable):
        return self.spec.get(variable) or self.role_specs.get(variable)


@functools.lru_cache(maxsize=None)
def playbook_model(path):
    return Playbook(path)


# -- the checks ---------------------------------------------------------------------------
def sample_answer(question, confirm_word=None):
    """An answer a user could give: the default, else a value within the question's limits (the
    confirmation word for the confirm question, which the playbook's spec accepts alone)."""
    if question["variable"] == "confirm" and confirm_word:
        return confirm_word
    if question.get("default") not in (None, ""):
        return question["default"]
    kind = question["type"]
    if kind in ("multiplechoice", "multiselect"):
        first = choices(question)[0]
        return first if kind == "multiplechoice" else [first]
    if kind in ("integer", "float"):
        return question.get("min") or 1
    if question["variable"] == "project_dir":
        return "/srv/shop"
    length = max(question.get("min") or 0, 1 if question["required"] else 0)
    return "a" * length


def choices(question):
    value = question.get("choices", [])
    return [c for c in value.splitlines() if c.strip()] if isinstance(value, str) else list(value)


def survey_format_errors(survey):
    """What AWX's survey_spec endpoint (and its launch-time validation) would refuse."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("survey field %r missing or not a %s" % (field, kind.__name__))
    if errors or not survey["spec"]:
        return errors or ["survey spec has no questions"]
    seen = set()
    for index, q in enumerate(survey["spec"]):
        where = "question %d (%s)" % (index, q.get("variable"))
        for field, kind in (("question_name", str), ("variable", str), ("type", str), ("required", bool)):
            if not isinstance(q.get(field), kind):
                errors.append("%s: %r missing or not a %s" % (where, field, kind.__name__))
        if errors:
            continue
        if q["variable"] in seen:
            errors.append("%s: variable asked twice" % where)
        seen.add(q["variable"])
        if q["type"] not in SURVEY_TYPES:
            errors.append("%s: unknown type %r" % (where, q["type"]))
        for limit in ("min", "max"):
            if q.get(limit) is not None and not isinstance(q[limit], int):
                errors.append("%s: %s must be an integer" % (where, limit))
        default = q.get("default")
        if q["type"] in ("multiplechoice", "multiselect"):
            if not choices(q):
                errors.append("%s: %s needs choices" % (where, q["type"]))
            elif default not in (None, "") and default not in choices(q):
                errors.append("%s: default %r is not one of the choices" % (where, default))
        elif q["type"] in ("integer", "float") and default not in (None, ""):
            if not isinstance(default, int if q["type"] == "integer" else (int, float)):
                errors.append("%s: default %r is not a number" % (where, default))
            elif not (q.get("min", default) <= default <= q.get("max", default)):
                errors.append("%s: default %r outside min/max" % (where, default))
        elif isinstance(default, str) and default:
            if not q.get("min", 0) <= len(default) <= q.get("max", len(default)):
                errors.append("%s: default %r outside min/max length" % (where, default))
    return errors


def survey_errors(playbook, survey, provided=(), extra_vars=None):
    """Why `survey` does not fit `playbook`. `provided`: variables set elsewhere (job template
    extra vars, workflow node data); `extra_vars`: their values."""
    errors = survey_format_errors(survey)
    if errors:
        return errors
    questions = {q["variable"]: q for q in survey["spec"]}
    for variable, q in questions.items():
        if variable not in playbook.accepted:
            errors.append("%s: the playbook never reads %r" % (playbook.name, variable))
            continue
        option = playbook.option(variable)
        if not option:
            continue
        kind = option.get("type", "str")
        if q["type"] not in COMPATIBLE.get(kind, set()):
            errors.append("%s: %r is %s in the argument spec but a %s question" % (playbook.name, variable, kind, q["type"]))
        if kind == "bool" and not set(choices(q)) <= BOOL_CHOICES:
            errors.append("%s: %r is a bool; choices must be true/false" % (playbook.name, variable))
        if option.get("choices") and not set(choices(q)) <= {str(c) for c in option["choices"]}:
            errors.append("%s: %r choices %s are not among %s" % (playbook.name, variable, choices(q), option["choices"]))
        # The confirmation word is typed, not picked: its own rule (below) checks that question.
        if option.get("choices") and q["type"] != "multiplechoice" and variable != "confirm":
            errors.append("%s: %r has choices; ask it as multiplechoice" % (playbook.name, variable))
    for variable in sorted(playbook.required):
        if variable in provided:
            continue
        if variable not in questions:
            errors.append("%s: required variable %r is not asked" % (playbook.name, variable))
        elif not questions[variable]["required"]:
            errors.append("%s: required variable %r is an optional question" % (playbook.name, variable))
    if playbook.confirm_word and "confirm" in playbook.accepted:
        word = playbook.confirm_word
        q = questions.get("confirm")
        if not q:
            errors.append("%s: no confirm question (the playbook wants confirm=%s)" % (playbook.name, word))
        elif not (q["type"] == "text" and q["required"] and q.get("min") == len(word) == q.get("max")
                  and q.get("default") in (None, "") and word in q.get("question_description", "")):
            errors.append("%s: confirm must be a required text question, min=max=%d, no default, naming %s"
                          % (playbook.name, len(word), word))
    if playbook.spec and not errors:
        errors += spec_errors(playbook, survey, extra_vars or {})
    return errors


def spec_errors(playbook, survey, extra_vars):
    """Ansible's own argument spec validation of the answers AWX would send: every question
    answered, then every optional text question sent empty and left out."""
    answers = {q["variable"]: sample_answer(q, playbook.confirm_word) for q in survey["spec"]}
    answers.update({k: v for k, v in extra_vars.items() if k in playbook.spec})
    variants = [answers]
    for q in survey["spec"]:
        if not q["required"] and q["variable"] in playbook.spec:
            without = {k: v for k, v in answers.items() if k != q["variable"]}
            variants.append(without)
            if q["type"] in ("text", "textarea"):
                variants.append(dict(without, **{q["variable"]: ""}))
    errors = []
    for params in variants:
        result = ArgumentSpecValidator(copy.deepcopy(playbook.spec)).validate(params)
        errors += ["%s: %s (answers %s)" % (playbook.name, msg, params) for msg in result.error_messages]
    return errors


def job_template_for(playbook_name):
    found = [t for t in job_templates()["ops_rollback_awx_job_templates"]
             if name(t["playbook"]) == playbook_name]
    return found[0] if found else None


# -- tests --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PLAYBOOKS, ids=name)
def test_every_playbook_has_a_survey_that_fits_it(path):
    survey_path = os.path.join(AWX, "surveys", name(path) + ".json")
    assert os.path.exists(survey_path), (
        "playbooks/%s.yml has no AWX survey: add awx/surveys/%s.json (format: docs/awx.md)" % (name(path), name(path)))
    template = job_template_for(name(path)) or {}
    extra_vars = template.get("extra_vars") or {}
    assert survey_errors(playbook_model(path), load_json(survey_path), set(extra_vars), extra_vars) == []


def test_every_survey_belongs_to_a_playbook():
    playbooks = {name(p) for p in PLAYBOOKS}
    surveys = {name(p) for p in glob.glob(os.path.join(AWX, "surveys", "*.json"))}
    assert surveys - playbooks == set()


def test_the_checks_catch_a_bad_survey():
    """The checks above can fail: a survey with each kind of mistake is refused for it."""
    playbook = playbook_model(os.path.join(ROOT, "playbooks", "rollback.yml"))
    good = load_json(os.path.join(AWX, "surveys", "rollback.json"))
    assert survey_errors(playbook, good) == []

    def broken(change):
        survey = copy.deepcopy(good)
        change({q["variable"]: q for q in survey["spec"]}, survey)
        return survey_errors(playbook, survey)

    def drop(variable):
        return lambda qs, s: s["spec"].remove(qs[variable])

    assert "never reads 'colour'" in " ".join(broken(lambda qs, s: s["spec"].append(
        dict(qs["reason"], variable="colour"))))
    assert "required variable 'stack' is not asked" in " ".join(broken(drop("stack")))
    assert "confirm" in " ".join(broken(drop("confirm")))
    assert "min=max=8" in " ".join(broken(lambda qs, s: qs["confirm"].update(min=1)))
    assert "min=max=8" in " ".join(broken(lambda qs, s: qs["confirm"].update(default="ROLLBACK")))
    assert "not among" in " ".join(broken(lambda qs, s: qs["strategy"].update(choices=["recreate", "yolo"])))
    assert "is int in the argument spec" in " ".join(broken(lambda qs, s: qs["wait_timeout"].update(type="text", default="")))
    assert "choices must be true/false" in " ".join(broken(lambda qs, s: qs["break_lock"].update(choices=["yes", "maybe"], default="yes")))
    assert "optional question" in " ".join(broken(lambda qs, s: qs["project_dir"].update(required=False)))
    assert "not one of the choices" in " ".join(broken(lambda qs, s: qs["strategy"].update(default="canary")))
    # Ansible's validator: a value of the wrong type for the spec.
    assert "wait_timeout" in " ".join(broken(lambda qs, s: qs["wait_timeout"].update(type="float", default=1.5)))


def test_a_playbook_without_a_survey_fails(tmp_path, monkeypatch):
    """A new playbook (guard.yml, history.yml, ...) without its survey fails the test above."""
    path = tmp_path / "playbooks" / "new_runbook.yml"
    path.parent.mkdir()
    path.write_text("---\n- name: New\n  hosts: all\n  tasks: []\n")
    with pytest.raises(AssertionError, match="has no AWX survey"):
        test_every_playbook_has_a_survey_that_fits_it(str(path))


def test_job_templates_name_real_playbooks_and_surveys():
    templates = job_templates()["ops_rollback_awx_job_templates"]
    assert {name(t["playbook"]) for t in templates} == {name(p) for p in PLAYBOOKS} - {
        name(p) for p in PLAYBOOKS if not os.path.exists(os.path.join(AWX, "surveys", name(p) + ".json"))}
    for template in templates:
        assert os.path.exists(os.path.join(ROOT, template["playbook"])), template["name"]
        assert template["survey_enabled"] is True, template["name"]
        playbook = playbook_model(os.path.join(ROOT, template["playbook"]))
        for variable in template.get("extra_vars") or {}:
            assert variable in playbook.accepted, "%s: extra var %r is never read" % (template["name"], variable)
        if playbook.confirm_word:
            # A dry run needs the job type prompt (Check); a real run needs the word.
            assert template.get("ask_job_type_on_launch") is True, template["name"]


def test_workflow_backup_rollback_verify_with_its_failure_path():
    templates = {t["name"]: t for t in job_templates()["ops_rollback_awx_job_templates"]}
    (workflow,) = job_templates()["ops_rollback_awx_workflow_job_templates"]
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    assert len(nodes) == len(workflow["workflow_nodes"])

    def children(node, kind):
        return [c["identifier"] for c in node.get("related", {}).get(kind, [])]

    for node in nodes.values():
        for kind in ("success_nodes", "failure_nodes", "always_nodes"):
            assert set(children(node, kind)) <= set(nodes), node["identifier"]
    playbook_of = {i: name(templates[n["unified_job_template"]["name"]]["playbook"])
                   for i, n in nodes.items() if n["unified_job_template"]["type"] == "job_template"}
    assert playbook_of == {"backup": "backup", "rollback": "rollback", "verify": "verify"}
    assert children(nodes["backup"], "success_nodes") == ["rollback"]
    assert children(nodes["rollback"], "success_nodes") == ["verify"]
    # The failure path: a failed backup goes to a human approval, approval leads to the rollback.
    (approval,) = children(nodes["backup"], "failure_nodes")
    assert nodes[approval]["unified_job_template"]["type"] == "workflow_approval"
    assert nodes[approval]["unified_job_template"]["timeout"] > 0
    assert children(nodes[approval], "success_nodes") == ["rollback"]
    # A failed rollback has no handler, so that AWX marks the workflow failed.
    assert children(nodes["rollback"], "failure_nodes") == [] == children(nodes["rollback"], "always_nodes")

    # The workflow's survey reaches every node: each node's playbook gets what it requires
    # from it (or from its job template / node data), and each question is read by a node.
    survey = load_json(os.path.join(AWX, "surveys", "workflows", "backup_rollback_verify.json"))
    assert survey_format_errors(survey) == []
    read_by_some_node = set()
    for identifier, playbook_name in playbook_of.items():
        playbook = playbook_model(os.path.join(ROOT, "playbooks", playbook_name + ".yml"))
        template = templates[nodes[identifier]["unified_job_template"]["name"]]
        node_data = nodes[identifier].get("extra_data") or {}
        node_survey = load_json(os.path.join(AWX, "surveys", playbook_name + ".json"))
        # AWX accepts node data only for variables the job template's survey asks.
        assert set(node_data) <= {q["variable"] for q in node_survey["spec"]}, identifier
        own = dict(survey, spec=[q for q in survey["spec"] if q["variable"] in playbook.accepted])
        read_by_some_node |= {q["variable"] for q in own["spec"]}
        provided = dict(template.get("extra_vars") or {}, **node_data)
        assert survey_errors(playbook, own, set(provided), provided) == [], identifier
    assert {q["variable"] for q in survey["spec"]} <= read_by_some_node


def test_schedules_answer_the_required_questions():
    templates = {t["name"]: t for t in job_templates()["ops_rollback_awx_job_templates"]}
    for schedule in job_templates()["ops_rollback_awx_schedules"]:
        template = templates[schedule["unified_job_template"]]
        assert re.match(r"DTSTART[;:].* RRULE:FREQ=", schedule["rrule"]), schedule["name"]
        survey = load_json(os.path.join(AWX, "surveys", name(template["playbook"]) + ".json"))
        answered = dict({q["variable"]: q["default"] for q in survey["spec"] if q.get("default") not in (None, "")},
                        **schedule["extra_data"])
        assert set(schedule["extra_data"]) <= {q["variable"] for q in survey["spec"]}, schedule["name"]
        missing = [q["variable"] for q in survey["spec"] if q["required"] and q["variable"] not in answered]
        assert missing == [], schedule["name"]


def test_netlify_credential_type_injects_the_token_the_modules_read():
    from ansible_collections.ops.rollback.plugins.module_utils import _netlify

    credential_type = load_json(os.path.join(AWX, "credential_type_netlify.json"))
    assert credential_type["kind"] in ("cloud", "net")  # the kinds AWX allows for custom types
    fields = {f["id"]: f for f in credential_type["inputs"]["fields"]}
    (token_env,) = credential_type["injectors"]["env"]
    assert token_env == _netlify.TOKEN_ENV == "NETLIFY_AUTH_TOKEN"
    variable = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", credential_type["injectors"]["env"][token_env]).group(1)
    assert fields[variable]["secret"] is True and variable in credential_type["inputs"]["required"]
    # Only the environment: no extra var, no file that a job's output could show.
    assert set(credential_type["injectors"]) == {"env"}
    with open(os.path.join(ROOT, "playbooks", "netlify_rollback.yml")) as handle:
        assert "lookup('ansible.builtin.env', 'NETLIFY_AUTH_TOKEN')" in handle.read()

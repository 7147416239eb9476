# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks HTTP requests (and, for self-tests, responses) against Netlify's Swagger 2.0 definition.

Only the parts of Swagger 2.0 that the Netlify definition uses are implemented: path templates,
parameters in path, query, header, body and formData with their types, enums and `required`,
`consumes`, and JSON schemas (type, properties, required, enum, items, additionalProperties,
allOf). Everything is stdlib, so the emulator has no dependencies.
"""
from __future__ import annotations

import json
import os
import re

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "swagger.json")

_INT_RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}


class SpecViolation(Exception):
    """A request that the OpenAPI definition does not allow."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Operation:
    """One method on one path template, with its merged parameters."""

    def __init__(self, method, template, item, operation, global_consumes):
        self.method = method
        self.template = template
        self.operation_id = operation.get("operationId", "%s %s" % (method, template))
        self.consumes = operation.get("consumes", global_consumes)
        params = {}
        for param in item.get("parameters", []) + operation.get("parameters", []):
            params[(param["name"], param["in"])] = param
        self.parameters = list(params.values())
        self.responses = operation.get("responses", {})

    def response_schema(self, status):
        response = self.responses.get(str(status)) or self.responses.get("default") or {}
        return response.get("schema")


class OpenApiSpec:
    """Matches requests to operations and validates them."""

    def __init__(self, document):
        if document.get("swagger") != "2.0":
            raise ValueError("only Swagger 2.0 definitions are supported")
        self.document = document
        self.version = document.get("info", {}).get("version")
        self.base_path = document.get("basePath", "").rstrip("/")
        consumes = document.get("consumes", ["application/json"])
        self._routes = []
        for template, item in document["paths"].items():
            operations = {}
            for method, operation in item.items():
                if method == "parameters" or method.startswith("x-"):
                    continue
                operations[method.upper()] = Operation(method.upper(), template, item, operation, consumes)
            regex = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            literal = len([seg for seg in template.split("/") if seg and not seg.startswith("{")])
            self._routes.append((re.compile(regex.replace("(?P<", "(?P<p_")), template, literal, operations))
        # Literal segments win over parameters: /sites/{id}/deploys before /sites/{id}/{x}.
        self._routes.sort(key=lambda route: -route[2])

    @classmethod
    def load(cls, path=SPEC_PATH):
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle))

    def find(self, method, path):
        """The Operation for METHOD PATH (path below basePath) and its path parameters."""
        allowed = None
        for regex, template, _literal, operations in self._routes:
            match = regex.match(path)
            if not match:
                continue
            params = {key[2:]: value for key, value in match.groupdict().items()}
            if method in operations:
                return operations[method], params
            allowed = allowed or sorted(operations)
        if allowed:
            raise SpecViolation("%s is not defined for %s (allowed: %s)" % (method, path, ", ".join(allowed)), 405)
        raise SpecViolation("no path in the definition matches %s" % path, 404)

    def validate_request(self, method, path, query, headers, body, content_type):
        """Validate one request; return (operation, path_params, parsed_body).

        `path` is below basePath, `query` maps names to lists of values (parse_qs), `headers`
        is case-insensitive (a Message), `body` is bytes.
        """
        operation, path_params = self.find(method, path)
        errors = []
        declared = {}
        body_param = None
        for param in operation.parameters:
            location = param["in"]
            name = param["name"]
            if location == "body":
                body_param = param
                continue
            if location == "query":
                declared[name] = param
                values = query.get(name)
            elif location == "path":
                values = [path_params[name]] if name in path_params else None
            elif location == "header":
                value = headers.get(name)
                values = None if value is None else [value]
            else:
                values = None
                if location == "formData" and param.get("required") and not body:
                    errors.append("formData parameter %r is required" % name)
                continue
            if values is None:
                if param.get("required"):
                    errors.append("%s parameter %r is required" % (location, name))
                continue
            errors.extend(_check_parameter(param, values))
        for name in sorted(query):
            if name not in declared:
                errors.append("query parameter %r is not defined for %s" % (name, operation.operation_id))
        parsed = None
        if body:
            media = (content_type or "").split(";")[0].strip().lower()
            if body_param is None and not any(p["in"] == "formData" for p in operation.parameters):
                errors.append("%s takes no request body, got %d bytes" % (operation.operation_id, len(body)))
            elif media not in [c.lower() for c in operation.consumes]:
                errors.append("content type %r is not in %s" % (media, operation.consumes))
            elif body_param is not None and media == "application/json":
                try:
                    parsed = json.loads(body.decode("utf-8"))
                except ValueError as exc:
                    errors.append("request body is not JSON: %s" % exc)
                else:
                    errors.extend(validate_schema(parsed, body_param.get("schema", {}), "body"))
        elif body_param is not None and body_param.get("required"):
            errors.append("body parameter %r is required" % body_param["name"])
        if errors:
            raise SpecViolation("%s %s violates %s: %s" % (method, path, operation.operation_id, "; ".join(errors)))
        return operation, path_params, parsed


def _check_parameter(param, values):
    name = param["name"]
    kind = param.get("type", "string")
    if kind == "array":
        fmt = param.get("collectionFormat", "csv")
        if fmt == "multi":
            items = values
        else:
            if len(values) > 1:
                return ["parameter %r given %d times" % (name, len(values))]
            sep = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}.get(fmt, ",")
            items = values[0].split(sep) if values[0] else []
        errors = []
        for item in items:
            errors.extend(_check_scalar(name, param.get("items", {}), item))
        return errors
    if len(values) > 1:
        return ["parameter %r given %d times" % (name, len(values))]
    return _check_scalar(name, param, values[0])


def _check_scalar(name, schema, raw):
    kind = schema.get("type", "string")
    value = raw
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]+", raw):
            return ["parameter %r must be an integer, got %r" % (name, raw)]
        value = int(raw)
        low, high = _INT_RANGES.get(schema.get("format"), (None, None))
        if low is not None and not low <= value <= high:
            return ["parameter %r is out of %s range" % (name, schema.get("format"))]
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            return ["parameter %r must be a number, got %r" % (name, raw)]
    elif kind == "boolean":
        if raw not in ("true", "false"):
            return ["parameter %r must be true or false, got %r" % (name, raw)]
    elif kind == "string":
        if raw == "" and schema.get("in") == "path":
            return ["path parameter %r is empty" % name]
    if "enum" in schema and value not in schema["enum"]:
        return ["parameter %r must be one of %s, got %r" % (name, schema["enum"], raw)]
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        return ["parameter %r must be >= %s" % (name, schema["minimum"])]
    if "maximum" in schema and isinstance(value, (int, float)) and value > schema["maximum"]:
        return ["parameter %r must be <= %s" % (name, schema["maximum"])]
    return []


_JSON_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def validate_schema(value, schema, where, allow_null=False):
    """Errors (a list of strings) of a JSON value against a Swagger 2.0 schema."""
    errors = []
    if not schema:
        return errors
    for part in schema.get("allOf", []):
        errors.extend(validate_schema(value, part, where, allow_null))
    if value is None:
        if not (allow_null or schema.get("x-nullable")):
            errors.append("%s is null" % where)
        return errors
    kind = schema.get("type")
    if kind:
        types = _JSON_TYPES.get(kind, (object,))
        if isinstance(value, bool) and kind in ("integer", "number"):
            return errors + ["%s must be %s, got a boolean" % (where, kind)]
        if not isinstance(value, types):
            return errors + ["%s must be %s, got %s" % (where, kind, type(value).__name__)]
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s must be one of %s" % (where, schema["enum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append("%s.%s is required" % (where, name))
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors.extend(validate_schema(item, props[name], "%s.%s" % (where, name), allow_null))
            elif extra is False:
                errors.append("%s.%s is not defined" % (where, name))
            elif isinstance(extra, dict):
                errors.extend(validate_schema(item, extra, "%s.%s" % (where, name), allow_null))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors.extend(validate_schema(item, schema.get("items", {}), "%s[%d]" % (where, index), allow_null))
    return errors

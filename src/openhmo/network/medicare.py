"""The Medicare physician fee schedule (MPFS), the base of percent-of-Medicare contracts.

Built from the shipped 2022 RVU file sample and the 2022 GPCI addendum:

    fee = [(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF

in Decimal, rounded half up to the cent once at the end. The PE RVU is the facility
or the non-facility one, as the place of service says. Where the RVU file marks a
setting "NA" (rarely or never performed there) its PE RVU column already holds the
value CMS pays, so it is used as is and the detail says so.

Localities are written "MA-01" (state and locality number), or by the locality name
("METROPOLITAN BOSTON"). Only status codes A, R and T are paid under the fee schedule;
any other status, or a code with no RVUs, has no Medicare fee (NoMedicareFee).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

from openhmo.money import Cents

SHIPPED_YEARS = (2022,)
PAYABLE_STATUS = frozenset("ART")
# Modifiers that select a row of their own in the RVU file; others price as the global code.
PRICING_MODIFIERS = frozenset({"26", "TC", "53"})

STATUS_MEANING = {
    "A": "active, paid under the fee schedule",
    "B": "bundled into other services, never paid separately",
    "C": "priced by the Medicare contractor, no national RVUs",
    "D": "deleted",
    "E": "excluded from the fee schedule by regulation",
    "F": "deleted, no grace period",
    "G": "not valid for Medicare (another code is used)",
    "H": "deleted modifier",
    "I": "not valid for Medicare (another code is used)",
    "J": "anesthesia service, paid on anesthesia base units",
    "M": "measurement code, reported only",
    "N": "not covered by Medicare",
    "P": "bundled or excluded, not paid under the fee schedule",
    "R": "restricted coverage",
    "T": "paid only when no other fee-schedule service is billed that day",
    "X": "statutory exclusion, paid under another fee schedule (e.g. clinical lab)",
}


class MedicareFeeError(ValueError):
    """The Medicare fee of a code cannot be had; the message says why."""


class UnknownCode(MedicareFeeError):
    pass


class UnknownLocality(MedicareFeeError):
    pass


class NoMedicareFee(MedicareFeeError):
    """The code is in the file but Medicare pays no fee-schedule amount for it."""


@dataclass(frozen=True, slots=True)
class RvuRow:
    code: str
    modifier: str
    status: str
    work_rvu: Decimal
    non_facility_pe_rvu: Decimal
    non_facility_na: bool
    facility_pe_rvu: Decimal
    facility_na: bool
    mp_rvu: Decimal
    conversion_factor: Decimal


@dataclass(frozen=True, slots=True)
class Locality:
    key: str
    mac: str
    state: str
    number: str
    name: str
    work_gpci: Decimal
    pe_gpci: Decimal
    mp_gpci: Decimal


@dataclass(frozen=True, slots=True)
class MedicareFee:
    """A fee and how it was computed, for an explanation of benefits or an examiner."""

    cents: Cents
    rvu: RvuRow
    locality: Locality
    facility: bool
    exact: Decimal

    @property
    def detail(self) -> str:
        r, g = self.rvu, self.locality
        pe = r.facility_pe_rvu if self.facility else r.non_facility_pe_rvu
        setting = "facility" if self.facility else "non-facility"
        na = r.facility_na if self.facility else r.non_facility_na
        code = f"{r.code}-{r.modifier}" if r.modifier else r.code
        return (
            f"Medicare 2022 {code} {g.key} {setting}: ({r.work_rvu}x{g.work_gpci} + "
            f"{pe}x{g.pe_gpci} + {r.mp_rvu}x{g.mp_gpci}) x {r.conversion_factor} = "
            f"{self.exact.quantize(Decimal('0.0001'))}"
            + (f" (RVU file marks {setting} NA)" if na else "")
        )


def _data(name: str) -> str:
    return resources.files("openhmo.reference").joinpath(f"data/{name}").read_text("utf-8")


def _header_names(rows: list[list[str]]) -> list[str]:
    """Column names of a multi-row header: each column's pieces joined top to bottom."""
    width = max(len(r) for r in rows)
    return [
        " ".join(" ".join(r[i].split()) for r in rows if i < len(r) and r[i].strip())
        for i in range(width)
    ]


@cache
def rvu_table() -> dict[tuple[str, str], RvuRow]:
    rows = list(csv.reader(io.StringIO(_data("mpfs_pprrvu22_jan_sample.csv"))))
    last = next(i for i, r in enumerate(rows) if r and r[0].strip() == "HCPCS")
    # The header block is the rows between the title lines and the "HCPCS" row that have
    # a column heading; the title rows only use the description column.
    first = next(i for i in range(last, -1, -1) if not any(c.strip() for c in rows[i][3:]))
    names = _header_names(rows[first + 1 : last + 1])
    col = {name: i for i, name in enumerate(names)}

    def need(name: str) -> int:
        if name not in col:
            raise RuntimeError(f"the RVU file has no column {name!r}; columns: {names}")
        return col[name]

    c_code, c_mod, c_status = need("HCPCS"), need("MOD"), need("STATUS CODE")
    c_work, c_mp, c_cf = need("WORK RVU"), need("MP RVU"), need("CONV FACTOR")
    c_nf, c_nf_na = need("NON-FAC PE RVU"), need("NON-FAC NA INDICATOR")
    c_f, c_f_na = need("FACILITY PE RVU"), need("FACILITY NA INDICATOR")
    table = {}
    for r in rows[last + 1 :]:
        if not r or not r[c_code].strip():
            continue
        row = RvuRow(
            code=r[c_code].strip().upper(),
            modifier=r[c_mod].strip().upper(),
            status=r[c_status].strip().upper(),
            work_rvu=Decimal(r[c_work] or 0),
            non_facility_pe_rvu=Decimal(r[c_nf] or 0),
            non_facility_na=r[c_nf_na].strip() == "NA",
            facility_pe_rvu=Decimal(r[c_f] or 0),
            facility_na=r[c_f_na].strip() == "NA",
            mp_rvu=Decimal(r[c_mp] or 0),
            conversion_factor=Decimal(r[c_cf]),
        )
        table[(row.code, row.modifier)] = row
    return table


@cache
def localities() -> dict[str, Locality]:
    """Localities by key 'ST-NN', from the GPCI addendum (title rows above its header)."""
    rows = list(csv.reader(io.StringIO(_data("mpfs_gpci2022.csv"))))
    start = next(i for i, r in enumerate(rows) if r and r[0].startswith("Medicare Administrative"))
    header = [" ".join(h.split()) for h in rows[start]]

    def find(word: str) -> int:
        return next(i for i, h in enumerate(header) if word in h)

    c_mac, c_state, c_num, c_name = (
        find("Contractor"),
        find("State"),
        find("Locality Number"),
        find("Locality Name"),
    )
    c_pw, c_pe, c_mp = find("PW GPCI"), find("PE GPCI"), find("MP GPCI")
    found = {}
    for r in rows[start + 1 :]:
        # Footnote rows at the end have text in the first cell only.
        if len(r) <= c_mp or not r[c_state].strip() or not r[c_num].strip().isdigit():
            continue
        state, number = r[c_state].strip().upper(), f"{int(r[c_num]):02d}"
        key = f"{state}-{number}"
        found[key] = Locality(
            key=key,
            mac=r[c_mac].strip(),
            state=state,
            number=number,
            name=r[c_name].strip().rstrip("*").strip(),
            work_gpci=Decimal(r[c_pw]),
            pe_gpci=Decimal(r[c_pe]),
            mp_gpci=Decimal(r[c_mp]),
        )
    return found


_LOCALITY_KEY = re.compile(r"^([A-Za-z]{2})[\s-]*(\d{1,2})$")


def find_locality(text: str) -> Locality:
    """The locality 'MA-01', 'MA 1', 'ma01' or 'Metropolitan Boston'."""
    text = str(text).strip()
    m = _LOCALITY_KEY.match(text)
    if m:
        key = f"{m.group(1).upper()}-{int(m.group(2)):02d}"
        if key in localities():
            return localities()[key]
        raise UnknownLocality(f"Medicare locality {text!r} ({key}) is not in the 2022 GPCI file")
    wanted = " ".join(text.upper().split())
    matches = [loc for loc in localities().values() if loc.name.upper() == wanted]
    if len(matches) == 1:
        return matches[0]
    raise UnknownLocality(
        f"Medicare locality {text!r} is not in the 2022 GPCI file "
        "(write it as state and locality number, e.g. MA-01, or by its exact name)"
    )


@cache
def _rvu_codes() -> frozenset[str]:
    """The codes of the RVU table (a claim's unknown code is looked up once per line kind,
    and a scan of the table for it was most of the engine's pricing time)."""
    return frozenset(c for c, _ in rvu_table())


def rvu_row(code: str, modifier: str = "") -> RvuRow:
    code, modifier = code.strip().upper(), (modifier or "").strip().upper()
    table = rvu_table()
    if (code, modifier) in table:
        return table[(code, modifier)]
    if modifier and modifier not in PRICING_MODIFIERS and (code, "") in table:
        return table[(code, "")]
    if code in _rvu_codes():
        raise UnknownCode(
            f"{code} has no {modifier} row in the Medicare fee schedule sample "
            "(only its other components are priced)"
        )
    raise UnknownCode(
        f"{code} is not in the 2022 Medicare fee schedule sample shipped with OpenHMO"
    )


def medicare_fee_detail(
    code: str, modifier: str = "", locality: str = "MA-01", facility: bool = False, year: int = 2022
) -> MedicareFee:
    if year not in SHIPPED_YEARS:
        raise MedicareFeeError(
            f"no Medicare fee schedule for {year} is shipped (only "
            f"{', '.join(map(str, SHIPPED_YEARS))})"
        )
    row = rvu_row(code, modifier)
    label = f"{row.code}-{row.modifier}" if row.modifier else row.code
    if row.status not in PAYABLE_STATUS:
        meaning = STATUS_MEANING.get(row.status, "not payable")
        raise NoMedicareFee(f"no Medicare fee for {label}: status {row.status} ({meaning})")
    loc = find_locality(locality)
    pe = row.facility_pe_rvu if facility else row.non_facility_pe_rvu
    if row.work_rvu == pe == row.mp_rvu == 0:
        raise NoMedicareFee(
            f"no Medicare fee for {label}: it has no RVUs "
            f"(status {row.status}: priced by the contractor)"
        )
    exact = (
        row.work_rvu * loc.work_gpci + pe * loc.pe_gpci + row.mp_rvu * loc.mp_gpci
    ) * row.conversion_factor
    cents = int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return MedicareFee(cents=cents, rvu=row, locality=loc, facility=facility, exact=exact)


def medicare_fee(
    code: str, modifier: str = "", locality: str = "MA-01", facility: bool = False, year: int = 2022
) -> Cents:
    """The Medicare fee in cents, or MedicareFeeError (UnknownCode, NoMedicareFee, ...)."""
    return medicare_fee_detail(code, modifier, locality, facility, year).cents

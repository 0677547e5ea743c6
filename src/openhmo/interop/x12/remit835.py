"""The 835 health care claim payment/advice (005010X221A1): built from plain values, checked.

Pure: no I/O and no database. `Remittance` is one payment (or notice) from the payer to
one payee with its claims (`ClaimPayment`, CLP loops) and service lines (`ServiceLine`,
SVC loops), and `ProviderAdjustment`s (PLB). `write_835` writes it into a
`writer.TransactionSet`; `render` wraps it in its own interchange.

Money is integer cents. The 835 must balance (the guide's section on balancing):

- per service line: SVC02 - sum(the line's CAS) = SVC03;
- per claim: CLP03 - sum(every CAS of the claim, claim and lines) = CLP04;
- CLP05 (patient responsibility) = sum of the claim's PR adjustments;
- BPR02 = sum(CLP04) - sum(PLB amounts), and BPR02 is never negative.

`check_balance` (in `check835`, importable from here) reads a finished file back and
answers with what does not balance, so a test or the CLI verifies what was written, not
what was meant. `reversal` makes a claim's reversal (CLP02 22: every amount of the
original negated, the guide's "reversals and corrections"); `provider_adjustments` finds
the PLB entries that keep a payment from going negative (overpayment recovery, WO).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from openhmo.interop.x12.check835 import check_balance as check_balance
from openhmo.interop.x12.writer import (
    Interchange,
    TransactionSet,
    amount,
    composite,
    d8,
    number,
)

VERSION = "005010X221A1"
PROCESSED_AS_PRIMARY = "1"
DENIED = "4"
REVERSAL = "22"
CLAIM_FILING_HMO = "HM"
OVERPAYMENT_RECOVERY = "WO"  # PLB03-1: money the payee owes, deferred or recovered
_MAX_TRIPLETS = 6  # reason/amount/quantity triplets in one CAS (CAS02-CAS19)
_MAX_PLB = 6  # adjustments in one PLB (PLB03-PLB14)
_DELIMITERS = str.maketrans("*:^~\r\n", "      ")  # to spaces, then collapsed


def _text(value: str | None, limit: int) -> str | None:
    """Free text made safe for the delimiters and the element's length."""
    if not value:
        return None
    return " ".join(str(value).translate(_DELIMITERS).split())[:limit] or None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS triplet: group code (CO, PR, OA, PI), CARC and amount in cents."""

    group: str
    reason: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """One SVC loop (2110). A denied line pays nothing and has no allowed amount."""

    charge_cents: int
    paid_cents: int
    service_date: date
    procedure_code: str | None = None
    modifiers: tuple[str, ...] = ()
    revenue_code: str | None = None
    paid_units: Decimal = Decimal(1)
    submitted_units: Decimal | None = None  # SVC07, when it differs from the paid units
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()  # RARCs, LQ*HE
    allowed_cents: int | None = None  # AMT*B6


@dataclass(frozen=True, slots=True)
class Person:
    last_name: str | None
    first_name: str | None
    identifier: str | None  # the member number (MI), or for NM1*82 the NPI (XX)
    organization: bool = False


@dataclass(frozen=True, slots=True)
class ClaimPayment:
    """One CLP loop (2100). Build with `claim_payment` so the totals follow the lines."""

    patient_control_number: str
    status: str
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    payer_claim_control_number: str
    patient: Person
    lines: tuple[ServiceLine, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()  # claim-level CAS
    insured: Person | None = None  # NM1*IL, when the subscriber is not the patient
    rendering: Person | None = None  # NM1*82, when the rendering provider is not the payee
    facility_code: str | None = None  # CLP08
    frequency_code: str | None = None  # CLP09
    received: date | None = None  # DTM*050
    filing_indicator: str = CLAIM_FILING_HMO


def claim_payment(
    *,
    patient_control_number: str,
    payer_claim_control_number: str,
    patient: Person,
    lines: Sequence[ServiceLine],
    adjustments: Sequence[Adjustment] = (),
    status: str | None = None,
    **details,
) -> ClaimPayment:
    """A claim whose charge, payment and patient responsibility are its lines' sums
    (less any claim-level adjustments; CLP05 is every PR adjustment of the claim).

    The status is 1 (processed as primary) unless every line is denied (nothing paid
    and no allowed amount): 4.
    """
    every = [*adjustments, *(a for ln in lines for a in ln.adjustments)]
    if status is None:
        denied = bool(lines) and all(
            ln.paid_cents == 0 and ln.allowed_cents is None for ln in lines
        )
        status = DENIED if denied else PROCESSED_AS_PRIMARY
    return ClaimPayment(
        patient_control_number=patient_control_number,
        status=status,
        charge_cents=sum(ln.charge_cents for ln in lines),
        paid_cents=sum(ln.paid_cents for ln in lines) - sum(a.amount_cents for a in adjustments),
        patient_responsibility_cents=sum(a.amount_cents for a in every if a.group == "PR"),
        payer_claim_control_number=payer_claim_control_number,
        patient=patient,
        lines=tuple(lines),
        adjustments=tuple(adjustments),
        **details,
    )


def _negate(adjustments: Iterable[Adjustment]) -> tuple[Adjustment, ...]:
    return tuple(replace(a, amount_cents=-a.amount_cents) for a in adjustments)


def reversal(claim: ClaimPayment) -> ClaimPayment:
    """The reversal of a claim remitted before: CLP02 22, every amount (and unit) negated.

    The guide: reverse the original payment with the original group codes and reasons
    so the provider's books return to the balance before it was posted; the reversal
    carries the same level of detail (the service lines) as the original.
    """
    lines = tuple(
        replace(
            ln,
            charge_cents=-ln.charge_cents,
            paid_cents=-ln.paid_cents,
            # 0 - x, not -x: a Decimal zero negated is "-0"
            paid_units=Decimal(0) - ln.paid_units,
            submitted_units=None if ln.submitted_units is None else 0 - ln.submitted_units,
            adjustments=_negate(ln.adjustments),
            allowed_cents=None if ln.allowed_cents is None else -ln.allowed_cents,
        )
        for ln in claim.lines
    )
    return replace(
        claim,
        status=REVERSAL,
        charge_cents=-claim.charge_cents,
        paid_cents=-claim.paid_cents,
        patient_responsibility_cents=-claim.patient_responsibility_cents,
        lines=lines,
        adjustments=_negate(claim.adjustments),
    )


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One PLB adjustment: a positive amount reduces the payment, a negative one adds."""

    reason: str
    reference: str | None
    amount_cents: int


def provider_adjustments(
    claims: Sequence[ClaimPayment], outstanding: Sequence[tuple[str, int]] = ()
) -> tuple[ProviderAdjustment, ...]:
    """The PLB entries that keep the payment at zero or more: at most six, one PLB.

    When the claims net to less than zero (a reversal takes back more than this 835
    pays), the shortfall is deferred: negative WO entries referencing the payer claim
    control numbers of the claims whose own net is most negative, each up to that net
    (the sixth takes whatever is left). When they net to more than zero and the payee
    still owes deferred amounts (`outstanding`: (reference, cents owed), oldest first),
    up to six of those are recovered with positive WO entries, as far as this payment
    goes; the rest waits for the next 835.

    Six, because the guide allows PLB to repeat but pyx12 (and so, likely, other
    readers) takes a second PLB for a second footer; six entries fill one PLB.
    """
    total = sum(c.paid_cents for c in claims)
    out: list[ProviderAdjustment] = []
    if total < 0:
        nets: dict[str, int] = defaultdict(int)
        for c in claims:
            nets[c.payer_claim_control_number] += c.paid_cents
        owing = sorted((net, n, ref) for n, (ref, net) in enumerate(nets.items()) if net < 0)
        short = -total
        for i, (net, _, reference) in enumerate(owing[:_MAX_PLB]):
            take = short if i == _MAX_PLB - 1 else min(-net, short)
            if take:
                out.append(ProviderAdjustment(OVERPAYMENT_RECOVERY, reference, -take))
            short -= take
        return tuple(out)
    room = total
    for reference, owed in outstanding:
        if room <= 0 or len(out) == _MAX_PLB:
            break
        take = min(owed, room)
        if take > 0:
            out.append(ProviderAdjustment(OVERPAYMENT_RECOVERY, reference, take))
            room -= take
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    state: str | None
    zip_code: str | None
    line2: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class BankAccount:
    routing: str  # ABA routing number (DFI qualifier 01)
    account: str


@dataclass(frozen=True, slots=True)
class Payer:
    """The health plan that pays (loop 1000A); `tin` is its EIN, nine digits."""

    name: str
    tin: str
    address: Address
    technical_contact: Contact  # PER*BL, required
    business_contact: Contact | None = None  # PER*CX
    payer_id: str | None = None  # REF*2U
    bank: BankAccount | None = None  # BPR06-BPR09, for ACH

    @property
    def identifier(self) -> str:
        """TRN03 and BPR10: "1" and the payer's EIN."""
        return "1" + "".join(ch for ch in self.tin if ch.isdigit())


@dataclass(frozen=True, slots=True)
class Payee:
    """Who is paid (loop 1000B): the billing provider, by NPI, with its TIN when known."""

    name: str
    npi: str
    tin: str | None = None
    address: Address | None = None
    bank: BankAccount | None = None  # BPR12-BPR15, for ACH


@dataclass(frozen=True, slots=True)
class Remittance:
    """One 835 transaction set: one payment (or a notice of none) to one payee."""

    payer: Payer
    payee: Payee
    payment_date: date
    trace_number: str
    method: str = "CHK"  # ACH or CHK when something is paid; NON is written for zero
    claims: tuple[ClaimPayment, ...] = ()
    adjustments: tuple[ProviderAdjustment, ...] = ()
    production_date: date | None = None  # DTM*405
    receiver_id: str | None = None  # REF*EV, when the receiver is not the payee
    fiscal_period_end: date | None = None  # PLB02; default: 31 December of the payment

    @property
    def claims_paid_cents(self) -> int:
        return sum(c.paid_cents for c in self.claims)

    @property
    def adjustments_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments)

    @property
    def total_paid_cents(self) -> int:
        """BPR02: what the claims pay less what the provider adjustments take."""
        return self.claims_paid_cents - self.adjustments_cents

    @property
    def payment_method(self) -> str:
        return self.method if self.total_paid_cents else "NON"


# --- writing -------------------------------------------------------------------------------


def _cas(ts: TransactionSet, adjustments: Iterable[Adjustment]) -> None:
    """CAS segments: one group code each, at most six reasons each, same reasons summed."""
    groups: dict[str, dict[str, int]] = {}
    for a in adjustments:
        reasons = groups.setdefault(a.group, {})
        reasons[a.reason] = reasons.get(a.reason, 0) + a.amount_cents
    for group, reasons in groups.items():
        items = [(r, c) for r, c in reasons.items() if c != 0]
        for i in range(0, len(items), _MAX_TRIPLETS):
            elements: list[object] = []
            for reason, cents in items[i : i + _MAX_TRIPLETS]:
                elements += [reason, amount(cents), None]
            ts.add("CAS", group, *elements)


def _nm1(ts: TransactionSet, entity: str, person: Person, qualifier: str) -> None:
    kind = "2" if person.organization else "1"
    ts.add(
        "NM1",
        entity,
        kind,
        _text(person.last_name, 60),
        None if person.organization else _text(person.first_name, 35),
        None,
        None,
        None,
        qualifier if person.identifier else None,
        _text(person.identifier, 80),
    )


def _address(ts: TransactionSet, address: Address) -> None:
    ts.add("N3", _text(address.line1, 55), _text(address.line2, 55))
    ts.add("N4", _text(address.city, 30), address.state, address.zip_code)


def _per(ts: TransactionSet, function: str, contact: Contact) -> None:
    numbers = [("TE", contact.phone), ("EM", contact.email)]
    elements: list[object] = []
    for qualifier, value in numbers:
        if value:
            elements += [qualifier, _text(value, 256)]
    ts.add("PER", function, _text(contact.name, 60), *elements)


def _line(ts: TransactionSet, line: ServiceLine) -> None:
    if line.procedure_code:
        procedure = composite("HC", line.procedure_code, *line.modifiers[:4])
        revenue = line.revenue_code
    else:
        procedure, revenue = composite("NU", line.revenue_code), None
    paid_units = None if line.paid_units == 1 else number(line.paid_units)
    submitted = line.submitted_units
    original = None if submitted is None or submitted == line.paid_units else number(submitted)
    ts.add(
        "SVC",
        procedure,
        amount(line.charge_cents),
        amount(line.paid_cents),
        revenue,
        paid_units,
        None,
        original,
    )
    ts.add("DTM", "472", d8(line.service_date))
    _cas(ts, line.adjustments)
    if line.allowed_cents is not None:
        ts.add("AMT", "B6", amount(line.allowed_cents))
    for remark in dict.fromkeys(line.remarks):
        ts.add("LQ", "HE", remark)


def _claim(ts: TransactionSet, claim: ClaimPayment) -> None:
    ts.add(
        "CLP",
        _text(claim.patient_control_number, 38),
        claim.status,
        amount(claim.charge_cents),
        amount(claim.paid_cents),
        amount(claim.patient_responsibility_cents) if claim.patient_responsibility_cents else None,
        claim.filing_indicator,
        claim.payer_claim_control_number,
        claim.facility_code,
        claim.frequency_code,
    )
    _cas(ts, claim.adjustments)
    _nm1(ts, "QC", claim.patient, "MI")
    if claim.insured is not None:
        _nm1(ts, "IL", claim.insured, "MI")
    if claim.rendering is not None:
        _nm1(ts, "82", claim.rendering, "XX")
    if claim.received is not None:
        ts.add("DTM", "050", d8(claim.received))
    for line in claim.lines:
        _line(ts, line)


def _bpr(ts: TransactionSet, r: Remittance) -> None:
    total, method = r.total_paid_cents, r.payment_method
    if total < 0:
        raise ValueError(
            f"the 835 to {r.payee.npi} would pay {amount(total)}: a negative payment needs "
            "provider adjustments (see provider_adjustments)"
        )
    # I: remittance information only (the check or the ACH credit travels on its own);
    # H: notification only, nothing is paid.
    handling = "H" if method == "NON" else "I"
    banks: list[object] = [None] * 11
    if method == "ACH":
        if r.payer.bank is None or r.payee.bank is None:
            raise ValueError("an ACH payment needs the payer's and the payee's bank accounts")
        banks = [
            "CCP",
            "01",
            r.payer.bank.routing,
            "DA",
            r.payer.bank.account,
            r.payer.identifier,
            None,
            "01",
            r.payee.bank.routing,
            "DA",
            r.payee.bank.account,
        ]
    ts.add("BPR", handling, amount(total), "C", method, *banks, d8(r.payment_date))


def write_835(ts: TransactionSet, r: Remittance) -> None:
    """The body of one 835 transaction set (ST and SE are the writer's)."""
    _bpr(ts, r)
    ts.add("TRN", "1", r.trace_number, r.payer.identifier)
    if r.receiver_id:
        ts.add("REF", "EV", _text(r.receiver_id, 50))
    if r.production_date is not None:
        ts.add("DTM", "405", d8(r.production_date))
    ts.add("N1", "PR", _text(r.payer.name, 60))
    _address(ts, r.payer.address)
    if r.payer.payer_id:
        ts.add("REF", "2U", r.payer.payer_id)
    if r.payer.business_contact is not None:
        _per(ts, "CX", r.payer.business_contact)
    _per(ts, "BL", r.payer.technical_contact)
    ts.add("N1", "PE", _text(r.payee.name, 60), "XX", r.payee.npi)
    if r.payee.address is not None:
        _address(ts, r.payee.address)
    if r.payee.tin:
        ts.add("REF", "TJ", "".join(ch for ch in r.payee.tin if ch.isdigit()))
    if r.claims:
        ts.add("LX", "1")
        for claim in r.claims:
            _claim(ts, claim)
    fiscal = r.fiscal_period_end or date(r.payment_date.year, 12, 31)
    items = list(r.adjustments)
    for i in range(0, len(items), _MAX_PLB):
        elements: list[object] = []
        for a in items[i : i + _MAX_PLB]:
            elements += [composite(a.reason, _text(a.reference, 50)), amount(a.amount_cents)]
        ts.add("PLB", r.payee.npi, d8(fiscal), *elements)


class _Interchange(Interchange):
    """The writer's interchange, dropping trailing empty elements of every segment.

    The 835 guide does not use ST03 (an 835 may travel through the banking system),
    while `writer.Interchange` always writes the set's version there: a set whose
    version is "" gets "ST*835*0001" rather than a trailing empty ST03.
    """

    __slots__ = ()

    def _line(self, elements: list[str]) -> str:
        while elements and elements[-1] == "":
            elements = elements[:-1]
        return super()._line(elements)


def render(
    r: Remittance,
    *,
    control: int,
    moment: datetime,
    sender: tuple[str, str] = ("ZZ", "OPENHMO"),
    receiver: tuple[str, str] | None = None,
    usage: str = "P",
) -> str:
    """One interchange holding the remittance's 835 (receiver: the payee's NPI)."""
    interchange = _Interchange(
        sender=sender,
        receiver=receiver or ("ZZ", r.payee.npi),
        control=control,
        moment=moment,
        usage=usage,
    )
    group = interchange.new_group("HP", VERSION)  # GS08 names the guide
    ts = group.new_set("835")
    ts.version = ""  # ST03: not used by the 835 guide
    write_835(ts, r)
    return interchange.render()

"""A year of care for the demo HMO's members: referrals, prior authorizations and claims.

Each member gets a realistic mix (about a dozen claims a year, DOMAIN.md §6): PCP
visits and preventive care, labs, specialists with and (sometimes) without a PCP
referral, OB/GYN visits and screening mammograms, emergency visits in and out of
network, urgent care, imaging with and without prior authorization, therapy series
that run past their limits, hospital stays, out-of-network visits that are not
emergencies, and the odd duplicate, replacement and claim after coverage ended. The
referrals and authorizations go through the referral rules; the claims are
submitted as an 837 would carry them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from openhmo.categories import ServiceCategory
from openhmo.claims.intake import ClaimIn, ClaimLineIn
from openhmo.enrollment.models import Coverage, Member, MemberCoverage, PcpAssignment
from openhmo.enrollment.service import EnrollmentError
from openhmo.network.membership import in_network_clause
from openhmo.network.models import Provider
from openhmo.plans.models import Plan
from openhmo.referrals.service import (
    approve_prior_auth,
    request_prior_auth,
    request_referral,
)

ACTOR = "demo"
NETWORK = "openhmo-core"
SPECIALTIES = ["207RC", "207N", "207X", "207RG", "2084N", "207Y", "207W", "207RE", "2088"]
COMMON_DX = [
    "J069",
    "I10",
    "E119",
    "M5450",
    "F411",
    "J45909",
    "R051",
    "K219",
    "N390",
    "J029",
    "H6590",
    "L309",
    "R109",
    "M25561",
]


@dataclass
class Person:
    member: Member
    plan_key: str
    start: date
    end: date | None
    pcp_npi: str | None

    @property
    def number(self) -> str:
        return self.member.member_number


class CareGenerator:
    """Makes the year's referrals, authorizations and claims for every member."""

    def __init__(self, session: Session, rng: random.Random, year: int):
        self.session, self.rng, self.year = session, rng, year
        self.counter = 0
        self.claims: list[tuple[ClaimIn, datetime]] = []
        self._providers()

    # --- who provides care -------------------------------------------------------------

    def _providers(self) -> None:
        day = date(self.year, 6, 30)
        in_network = set(
            self.session.scalars(select(Provider.id).where(in_network_clause(NETWORK, day)))
        )
        self.by_prefix: dict[str, list[Provider]] = {}
        self.out_of_network: list[Provider] = []
        for p in self.session.scalars(select(Provider).order_by(Provider.id)):
            if p.id not in in_network:
                self.out_of_network.append(p)
                continue
            self.by_prefix.setdefault(p.taxonomy_code or "", []).append(p)

    def _pick(self, *prefixes: str) -> Provider:
        pool = [p for code, ps in self.by_prefix.items() if code.startswith(prefixes) for p in ps]
        return self.rng.choice(pool)

    # --- the year --------------------------------------------------------------------------

    def people(self) -> list[Person]:
        rows = self.session.execute(
            select(
                Member,
                Plan.plan_key,
                MemberCoverage.effective_date,
                MemberCoverage.termination_date,
            )
            .join(MemberCoverage, MemberCoverage.member_id == Member.id)
            .join(Coverage, Coverage.id == MemberCoverage.coverage_id)
            .join(Plan, Plan.id == Coverage.plan_id)
            .order_by(Member.id)
        ).all()
        pcps = dict(
            self.session.execute(
                select(PcpAssignment.member_id, Provider.npi)
                .join(Provider, Provider.id == PcpAssignment.provider_id)
                .where(PcpAssignment.effective_to.is_(None))
            ).all()
        )
        return [Person(m, key, start, end, pcps.get(m.id)) for m, key, start, end in rows]

    def generate(self, progress=lambda n=1: None) -> list[tuple[ClaimIn, datetime]]:
        for person in self.people():
            self._year_of(person)
            progress(1)
        return self.claims

    def _day(self, person: Person, *, after_end: bool = False) -> date | None:
        last = date(self.year, 12, 31)
        start = max(person.start, date(self.year, 1, 1))
        end = min(person.end or last, last)
        if after_end and person.end and person.end < last:
            start, end = person.end + timedelta(days=1), last
        if start > end:
            return None
        return start + timedelta(days=self.rng.randint(0, (end - start).days))

    def _year_of(self, p: Person) -> None:
        rng, age = self.rng, p.member.age_on(date(self.year, 7, 1))
        female = p.member.sex == "F"
        pcp = p.pcp_npi or self._pick("207Q", "207R0", "208D").npi
        for _ in range(self._poisson(4.0 if age >= 18 else 4.4)):
            if (day := self._day(p)) is not None:
                self._office(p, pcp, day, rng.choice(["99213"] * 7 + ["99214"] * 3))
                if rng.random() < 0.45:
                    self._labs(p, day)
        if rng.random() < (0.55 if age >= 18 else 0.75) and (day := self._day(p)):
            self._preventive(p, pcp, day, age)
        if rng.random() < 0.40:
            self._specialist_series(p, pcp)
        if female and age >= 18 and rng.random() < 0.40 and (day := self._day(p)):
            self._office(p, self._pick("207V").npi, day, "99213", dx="N390")
        if female and age >= 40 and rng.random() < 0.60 and (day := self._day(p)):
            self._claim(p, self._pick("261QR").npi, day, [("77067", 1, "$280.00")], ["Z1231"], "22")
        if rng.random() < 0.08 and (day := self._day(p)):
            self._emergency(p, day)
        if rng.random() < 0.15 and (day := self._day(p)):
            self._claim(p, self._pick("261QU").npi, day, [("99213", 1, "$190.00")], ["J069"], "20")
        if rng.random() < 0.15 and (day := self._day(p)):
            self._claim(p, self._pick("261QR").npi, day, [("71046", 1, "$120.00")], ["R051"], "22")
        if rng.random() < 0.03:
            self._mri(p, pcp)
        if rng.random() < 0.04:
            self._series(p, "225100000X", "97110", rng.randint(6, 36), "$140.00", "M25561")
        if rng.random() < 0.05:
            self._series(p, "103T", "90837", rng.randint(4, 14), "$220.00", "F411")
        if rng.random() < 0.008:
            self._hospital_stay(p, pcp)
        if rng.random() < 0.03 and self.out_of_network and (day := self._day(p)):
            doctor = rng.choice(
                [d for d in self.out_of_network if d.entity_type == "individual"]
                or self.out_of_network
            )
            self._office(p, doctor.npi, day, "99214")
        if p.end and rng.random() < 0.3 and (day := self._day(p, after_end=True)):
            self._office(p, pcp, day, "99213")  # care after coverage ended: CO-27

    def _poisson(self, mean: float) -> int:
        """A Poisson count (at most 12), by inversion: deterministic for the seeded rng."""
        roll, k, term = self.rng.random(), 0, math.exp(-mean)
        total = term
        while roll >= total and k < 12:
            k += 1
            term *= mean / k
            total += term
        return k

    # --- kinds of care -------------------------------------------------------------------

    def _office(
        self, p: Person, npi: str, day: date, code: str, dx: str | None = None, **kw
    ) -> ClaimIn:
        charge = {"99213": "$175.00", "99214": "$260.00"}[code]
        return self._claim(
            p, npi, day, [(code, 1, charge)], [dx or self.rng.choice(COMMON_DX)], "11", **kw
        )

    def _labs(self, p: Person, day: date) -> None:
        lab = self._pick("291U").npi
        self._claim(
            p,
            lab,
            day,
            [("80053", 1, "$48.00"), ("85025", 1, "$32.00"), ("36415", 1, "$12.00")],
            [self.rng.choice(COMMON_DX)],
            "81",
        )

    def _preventive(self, p: Person, pcp: str, day: date, age: int) -> None:
        if age < 18:
            code = "99391" if age < 1 else "99392" if age < 5 else "99393" if age < 12 else "99394"
            dx = "Z00129"
        else:
            code = "99395" if age < 40 else "99396"
            dx = "Z0000"
        self._claim(p, pcp, day, [(code, 1, "$310.00")], [dx], "11")

    def _specialist_series(self, p: Person, pcp: str) -> None:
        rng = self.rng
        doctor = self._pick(rng.choice(SPECIALTIES))
        first = self._day(p)
        if first is None:
            return
        visits = rng.choice([1, 2, 2, 3, 3, 4, 5])
        referral = None
        if p.plan_key in ("openhmo-silver-hmo", "openhmo-gold-pos") and rng.random() < 0.8:
            referral = self._refer(p, pcp, doctor, first, rng.choice([2, 3, 4, 6, 8]))
        for i in range(visits):
            day = first + timedelta(days=21 * i)
            if day.year != self.year or (p.end and day > p.end):
                break
            self._office(
                p,
                doctor.npi,
                day,
                "99214",
                referral_number=referral if rng.random() < 0.7 else None,
            )

    def _refer(self, p: Person, pcp: str, doctor: Provider, day: date, visits: int) -> str | None:
        referring = self.session.scalar(select(Provider).where(Provider.npi == pcp))
        savepoint = self.session.begin_nested()
        try:
            referral = request_referral(
                self.session,
                member=p.member,
                referring_provider=referring,
                specialist=doctor,
                visits=visits,
                valid_from=day - timedelta(days=3),
                diagnosis_codes=["I10"],
                actor=ACTOR,
                source="demo",
            )
        except EnrollmentError:
            savepoint.rollback()
            return None
        savepoint.commit()
        return referral.referral_number

    def _emergency(self, p: Person, day: date) -> None:
        rng = self.rng
        if rng.random() < 0.2 and self.out_of_network:
            doctor = rng.choice(
                [d for d in self.out_of_network if (d.taxonomy_code or "").startswith("207P")]
                or self.out_of_network
            )
        else:
            doctor = self._pick("207P")
        dx = rng.choice(["R0789", "S93401A", "R109", "J45909"])
        self._claim(p, doctor.npi, day, [("99284", 1, "$650.00")], [dx], "23", emergency=True)
        hospital = self._pick("282N")
        self._claim(
            p,
            hospital.npi,
            day,
            [(None, 1, "$2,400.00", "0450")],
            [dx],
            None,
            claim_type="institutional",
            emergency=True,
        )

    def _mri(self, p: Person, pcp: str) -> None:
        day = self._day(p)
        if day is None:
            return
        center = self._pick("261QR")
        auth = None
        if self.rng.random() < 0.7:
            auth = self._authorize(p, pcp, ServiceCategory.ADVANCED_IMAGING, ["70551"], day)
        self._claim(
            p, center.npi, day, [("70551", 1, "$1,900.00")], ["R109"], "22", prior_auth_number=auth
        )

    def _authorize(
        self, p: Person, pcp: str, category: ServiceCategory, codes: list[str], day: date
    ) -> str | None:
        requester = self.session.scalar(select(Provider).where(Provider.npi == pcp))
        savepoint = self.session.begin_nested()
        try:
            auth = request_prior_auth(
                self.session,
                member=p.member,
                requesting_provider=requester,
                category=category,
                procedure_codes=codes,
                diagnosis_codes=["R109"],
                valid_from=day - timedelta(days=7),
                valid_to=day + timedelta(days=60),
                actor=ACTOR,
                source="demo",
            )
            approve_prior_auth(
                self.session,
                auth.auth_number,
                actor="demo:utilization-review",
                reason="meets criteria",
            )
        except EnrollmentError:
            savepoint.rollback()
            return None
        savepoint.commit()
        return auth.auth_number

    def _series(self, p: Person, prefix: str, code: str, visits: int, charge: str, dx: str) -> None:
        therapist = self._pick(prefix)
        first = self._day(p)
        if first is None:
            return
        for i in range(visits):
            day = first + timedelta(days=7 * i)
            if day.year != self.year or (p.end and day > p.end):
                break
            self._claim(p, therapist.npi, day, [(code, 1, charge)], [dx], "11")

    def _hospital_stay(self, p: Person, pcp: str) -> None:
        day = self._day(p)
        if day is None:
            return
        days = self.rng.randint(2, 6)
        auth = self._authorize(p, pcp, ServiceCategory.INPATIENT, [], day)
        hospital = self._pick("282N")
        self._claim(
            p,
            hospital.npi,
            day,
            [(None, days, f"${4200 * days:,}.00", "0120")],
            ["K219"],
            None,
            claim_type="institutional",
            prior_auth_number=auth,
        )

    # --- one claim ---------------------------------------------------------------------------

    def _claim(
        self,
        p: Person,
        npi: str,
        day: date,
        lines: list[tuple],
        dx: list[str],
        pos: str | None,
        *,
        claim_type: str = "professional",
        emergency: bool = False,
        referral_number: str | None = None,
        prior_auth_number: str | None = None,
    ) -> ClaimIn:
        self.counter += 1
        claim = ClaimIn(
            patient_control_number=f"DEMO{self.counter:08d}",
            member_number=p.number,
            billing_npi=npi,
            claim_type=claim_type,
            place_of_service=pos,
            diagnosis_codes=dx,
            emergency=emergency,
            referral_number=referral_number,
            prior_auth_number=prior_auth_number,
            source="demo",
            submitter="demo clearinghouse",
            lines=[
                ClaimLineIn(
                    service_date=day,
                    procedure_code=code,
                    units=Decimal(units),
                    charge=Decimal(charge.strip("$").replace(",", "")),
                    revenue_code=rest[0] if rest else None,
                )
                for code, units, charge, *rest in lines
            ],
        )
        received = datetime.combine(
            day + timedelta(days=self.rng.randint(2, 25)),
            time(9 + self.rng.randint(0, 8), self.rng.randint(0, 59)),
            tzinfo=UTC,
        )
        self.claims.append((claim, received))
        if self.rng.random() < 0.005:  # the office sends it twice under another number
            twin = claim.model_copy(
                update={"patient_control_number": claim.patient_control_number + "B"}
            )
            self.claims.append((twin, received + timedelta(days=9)))
        return claim

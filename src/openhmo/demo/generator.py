"""A realistic synthetic HMO: plans, a provider network, families, PCPs and a year of premiums.

Everything goes through the same code the plan's staff use — the plan-design loader,
the NPPES importer, enrollment with its service-area check, PCP choice and
auto-assignment, billing runs and payments — so the demo exercises the real rules
rather than writing rows around them. The same seed gives the same HMO.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from openhmo.billing.service import (
    PaymentIn,
    load_ledgers,
    record_payments,
    run_billing,
    settle_delinquency,
)
from openhmo.claims.intake import submit_claims
from openhmo.claims.service import adjudicate_waiting
from openhmo.db import refresh_statistics, session_factory, transaction
from openhmo.demo.claims import CareGenerator
from openhmo.enrollment.models import Coverage, Member
from openhmo.enrollment.pcp import auto_assign, choose_pcp
from openhmo.enrollment.service import (
    AddressIn,
    EnrollmentError,
    PersonIn,
    add_dependent,
    change_address,
    current_address,
    enroll_subscriber,
)
from openhmo.history.record import record_change
from openhmo.money import parse_money
from openhmo.network.importers.nppes import import_nppes
from openhmo.network.models import Location, Provider, ProviderLocation
from openhmo.network.npi import make_npi
from openhmo.network.pricing import Rate, RateKey
from openhmo.network.service import save_fee_schedule
from openhmo.network.taxonomy import roles_of
from openhmo.plans.loader import example_designs, load_design
from openhmo.plans.models import Plan
from openhmo.plans.store import design_of, save_design
from openhmo.reference.geo import ZipCode, distance_miles, zip_table, zips_in_counties

ACTOR = "demo"
NETWORK = "openhmo-core"
HMO = "openhmo-silver-hmo"
# The share of families choosing each plan, and whether a plan's members may live outside
# the HMO's counties (PPO and indemnity have no service-area rule).
PLAN_MIX = {
    "openhmo-silver-hmo": 0.55,
    "openhmo-silver-epo": 0.10,
    "openhmo-gold-pos": 0.10,
    "openhmo-gold-ppo": 0.18,
    "openhmo-traditional": 0.07,
}
OUTSIDE_STATES = ("NH", "RI")

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int], Advance]


def _no_progress(_description: str, _total: int) -> Advance:
    return lambda _n=1: None


def _data(name: str) -> dict:
    return yaml.safe_load(
        resources.files("openhmo.demo").joinpath(f"data/{name}").read_text("utf-8")
    )


@dataclass
class DemoConfig:
    seed: int = 2026
    families: int = 1200
    year: int = 2026
    workdir: Path = Path("openhmo-demo-files")


@dataclass
class Applicant:
    plan: str
    effective: date
    subscriber: PersonIn
    dependents: list[PersonIn]
    address: AddressIn
    billing: str
    subsidized: bool
    payer: str  # on_time, late or stops
    stops_in: int  # the month a "stops" payer stops paying
    chooses_pcp: bool


@dataclass
class DemoResult:
    refused: list[str] = field(default_factory=list)
    pcp_choices_refused: int = 0
    import_rejections: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    claims: object | None = None  # the claims run's WaitingReport

    def count(self, event: str, n: int = 1) -> None:
        self.events[event] = self.events.get(event, 0) + n


class DemoBuilder:
    def __init__(
        self, engine: Engine, config: DemoConfig, progress: ProgressFactory = _no_progress
    ):
        self.engine, self.config, self.progress = engine, config, progress
        self.rng = random.Random(config.seed)
        self.people = _data("people.yaml")
        self.network = _data("network.yaml")
        self.result = DemoResult()
        self.year = config.year

    # --- plans and places -----------------------------------------------------------------

    def load_plans(self) -> None:
        with transaction(self.engine) as session:
            for path in example_designs():
                save_design(session, load_design(path), source=f"example {path.name}", actor=ACTOR)
        hmo = load_design(next(p for p in example_designs() if p.stem == "hmo-silver"))
        self.area_zips = [
            z for z in zips_in_counties(set(hmo.service_area.counties)) if z.zip_type == "STANDARD"
        ]
        self.area_zips.sort(key=lambda z: z.zip_code)
        self.epo_counties = set(
            load_design(
                next(p for p in example_designs() if p.stem == "epo-silver")
            ).service_area.counties
        )
        self.pos_counties = set(
            load_design(
                next(p for p in example_designs() if p.stem == "pos-gold")
            ).service_area.counties
        )
        table = zip_table()
        self.outside_zips = sorted(
            (z for z in table.values() if z.state in OUTSIDE_STATES and z.zip_type == "STANDARD"),
            key=lambda z: z.zip_code,
        )
        # Addresses in Massachusetts but outside the HMO's counties (western MA).
        self.out_of_area_zips = sorted(
            (
                z
                for z in table.values()
                if z.state == "MA"
                and z.zip_type == "STANDARD"
                and z.county_fips
                and z.county_fips not in hmo.service_area.counties
            ),
            key=lambda z: z.zip_code,
        )

    def _street(self, zip_code: ZipCode) -> AddressIn:
        number = self.rng.randint(1, 399)
        return AddressIn(
            line1=f"{number} {self.rng.choice(self.people['streets'])}",
            city=zip_code.city,
            state=zip_code.state,
            zip_code=zip_code.zip_code,
        )

    # --- the provider network ---------------------------------------------------------------

    def build_network(self) -> None:
        workdir = self.config.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        rows: dict[str, list[dict]] = {
            "core-primary-care": [],
            "core-professional": [],
            "core-facility": [],
            "": [],
        }
        practices = self._practices()
        serial = self.config.seed * 7919 % 10_000_000
        spec = self.network
        for taxonomy, count in spec["individuals"].items():
            for _ in range(count):
                serial += 1
                practice = self.rng.choice(practices)
                row = self._individual(make_npi(f"1{serial % 100_000_000:08d}"), taxonomy, practice)
                pcp = roles_of(taxonomy).pcp_eligible
                schedule = "core-primary-care" if pcp else "core-professional"
                if self.rng.random() < spec["out_of_network_share"]:
                    schedule = ""
                rows[schedule].append(row)
        for facility in spec["facilities"]:
            for _ in range(facility["count"]):
                serial += 1
                place = self.rng.choice(self.area_zips)
                rows["core-facility"].append(
                    self._facility(make_npi(f"1{serial % 100_000_000:08d}"), facility, place)
                )
        advance = self.progress("Provider network", sum(len(r) for r in rows.values()))
        with transaction(self.engine) as session:
            rates = {
                RateKey(code): Rate(
                    parse_money(amount), "per_diem" if code == "0120" else "per_unit"
                )
                for code, amount in spec["per_code_rates"].items()
            }
            for s in spec["fee_schedules"]:
                save_fee_schedule(
                    session,
                    key=s["key"],
                    name=s["name"],
                    method=s["method"],
                    percent=Decimal(s["percent"]),
                    medicare_locality=s["locality"],
                    rates=rates,
                    actor=ACTOR,
                    reason="demo fee schedule",
                )
        for schedule, batch in rows.items():
            file = workdir / f"providers-{schedule or 'out-of-network'}.csv"
            _write_nppes(file, batch)
            with transaction(self.engine) as session:
                report = import_nppes(
                    session,
                    file,
                    network_key=NETWORK if schedule else None,
                    fee_schedule_key=schedule or None,
                    effective=date(self.year - 1, 1, 1) if schedule else None,
                    actor=ACTOR,
                    reason="demo provider roster",
                )
            self.result.import_rejections += [str(r) for r in report.rejections]
            advance(len(batch))

    def _practices(self) -> list[dict]:
        practices = []
        for i in range(60):
            place = self.rng.choice(self.area_zips)
            kind = self.rng.choice(
                [
                    "Family Practice",
                    "Medical Associates",
                    "Health Center",
                    "Physicians Group",
                    "Specialty Care",
                ]
            )
            practices.append(
                {
                    "tin": f"{(self.config.seed + i) % 90 + 10:02d}-{1000000 + i * 7919:07d}",
                    "name": f"{place.city} {kind}",
                    "zip": place,
                }
            )
        return practices

    def _individual(self, npi: str, taxonomy: str, practice: dict) -> dict:
        sex = self.rng.choice("FM")
        first = self.rng.choice(self.people["female_first" if sex == "F" else "male_first"])
        capacity = self.network["pcp_capacity"]
        small = self.rng.random() < capacity["share_small"]
        panel = self.rng.randint(*(capacity["small"] if small else capacity["usual"]))
        languages = ["English"] + [
            lang
            for lang, share in self.people["provider_languages"].items()
            if self.rng.random() < share
        ]
        credential = {
            "363LF0000X": "NP",
            "103T00000X": "PhD",
            "1041C0700X": "LICSW",
            "225100000X": "DPT",
            "111N00000X": "DC",
        }.get(taxonomy, "MD")
        return {
            "NPI": npi,
            "Entity Type Code": "1",
            "Provider Last Name (Legal Name)": self.rng.choice(self.people["last"]),
            "Provider First Name": first,
            "Provider Credential Text": credential,
            "Provider Sex Code": sex,
            **self._location(practice["zip"]),
            "Healthcare Provider Taxonomy Code_1": taxonomy,
            "Healthcare Provider Primary Taxonomy Switch_1": "Y",
            "OpenHMO Languages": "; ".join(languages),
            "OpenHMO Accepting New Patients": "Y"
            if self.rng.random() < self.network["accepting_share"]
            else "N",
            "OpenHMO Panel Capacity": str(panel),
            "OpenHMO Organization TIN": practice["tin"],
            "OpenHMO Organization Name": practice["name"],
        }

    def _facility(self, npi: str, facility: dict, place: ZipCode) -> dict:
        return {
            "NPI": npi,
            "Entity Type Code": "2",
            "Provider Organization Name (Legal Business Name)": facility["name"].format(
                city=place.city
            ),
            **self._location(place),
            "Healthcare Provider Taxonomy Code_1": facility["taxonomy"],
            "Healthcare Provider Primary Taxonomy Switch_1": "Y",
            "OpenHMO Languages": "English",
        }

    def _location(self, place: ZipCode) -> dict:
        address = self._street(place)
        phone = f"617{self.rng.randint(2000000, 9999999)}"
        return {
            "Provider First Line Business Practice Location Address": address.line1,
            "Provider Business Practice Location Address City Name": place.city,
            "Provider Business Practice Location Address State Name": place.state,
            "Provider Business Practice Location Address Postal Code": place.zip_code,
            "Provider Business Practice Location Address Telephone Number": phone,
        }

    # --- families ------------------------------------------------------------------------------

    def applicants(self) -> list[Applicant]:
        out = []
        for _ in range(self.config.families):
            plan = self.rng.choices(list(PLAN_MIX), weights=list(PLAN_MIX.values()))[0]
            out.append(self._applicant(plan))
        out.sort(key=lambda a: a.effective)
        return out

    def _person(self, sex: str, born: date, relationship: str, last: str) -> PersonIn:
        first = self.rng.choice(self.people["female_first" if sex == "F" else "male_first"])
        language = self.rng.choices(
            list(self.people["member_languages"]),
            weights=list(self.people["member_languages"].values()),
        )[0]
        return PersonIn(
            first_name=first,
            last_name=last,
            birth_date=born,
            sex=sex,
            relationship=relationship,
            language=language,
        )

    def _born(self, low: int, high: int) -> date:
        start = date(self.year - high, 1, 1)
        span = (date(self.year - low, 12, 31) - start).days
        return start + timedelta(days=self.rng.randint(0, span))

    def _applicant(self, plan: str) -> Applicant:
        rng = self.rng
        last = rng.choice(self.people["last"])
        shape = rng.choices(
            ["single", "couple", "single_parent", "couple_kids"], weights=[0.34, 0.24, 0.10, 0.32]
        )[0]
        sex = rng.choice("FM")
        subscriber = self._person(sex, self._born(22, 64), "self", last)
        dependents = []
        if shape in ("couple", "couple_kids"):
            partner_age = max(
                22, min(64, self.year - subscriber.birth_date.year + rng.randint(-5, 5))
            )
            dependents.append(
                self._person(
                    "M" if sex == "F" else "F", self._born(partner_age, partner_age), "spouse", last
                )
            )
        if shape in ("single_parent", "couple_kids"):
            parent_age = self.year - subscriber.birth_date.year
            for _ in range(rng.choices([1, 2, 3, 4], weights=[0.42, 0.38, 0.15, 0.05])[0]):
                # Born before the plan year (newborns arrive later, as births).
                oldest = max(1, min(25, parent_age - 20))
                dependents.append(
                    self._person(rng.choice("FM"), self._born(1, oldest), "child", last)
                )
        effective = date(self.year, 1, 1)
        if rng.random() < 0.15:
            effective = date(self.year, rng.randint(2, 9), 1)
        zip_code = self._home(plan)
        billing = "annual" if rng.random() < 0.10 else "monthly"
        payer = rng.choices(["on_time", "late", "stops"], weights=[0.90, 0.07, 0.03])[0]
        return Applicant(
            plan=plan,
            effective=effective,
            subscriber=subscriber,
            dependents=dependents,
            address=self._street(zip_code),
            billing=billing,
            subsidized=billing == "monthly" and rng.random() < 0.35,
            payer=payer,
            stops_in=rng.randint(max(3, effective.month + 1), 11),
            chooses_pcp=rng.random() < 0.6,
        )

    def _home(self, plan: str) -> ZipCode:
        rng = self.rng
        if plan in ("openhmo-gold-ppo", "openhmo-traditional") and rng.random() < 0.12:
            return rng.choice(self.outside_zips)
        if rng.random() < 0.02:  # applies while living outside the service area: refused
            return rng.choice(self.out_of_area_zips)
        pool = self.area_zips
        if plan == "openhmo-silver-epo":
            pool = [z for z in pool if z.county_fips in self.epo_counties]
        elif plan == "openhmo-gold-pos":
            pool = [z for z in pool if z.county_fips in self.pos_counties]
        return rng.choice(pool)

    # --- enrollment, PCPs, a year of premiums -----------------------------------------------

    def run_year(self, applicants: list[Applicant]) -> None:
        advance = self.progress(f"Enrollment and premiums, {self.year}", 12)
        self.behaviour: dict[int, Applicant] = {}
        for month in range(1, 13):
            first = date(self.year, month, 1)
            with transaction(self.engine) as session:
                self._enroll(session, [a for a in applicants if a.effective == first])
                auto_assign(session, as_of=first, actor=ACTOR)
                self._life_events(session, first)
                run_billing(session, through=first, actor=ACTOR)
                self._pay(session, first, "on_time")
                settle_delinquency(session, as_of=first + timedelta(days=9), actor=ACTOR)
                self._pay(session, first + timedelta(days=self.rng.randint(12, 20)), "late")
            advance(1)
        with transaction(self.engine) as session:
            run_billing(session, through=date(self.year, 12, 31), actor=ACTOR)
            record_change(
                session,
                actor=ACTOR,
                entity="demo",
                entity_id=self.config.seed,
                action="demo_built",
                reason=f"openhmo demo, seed {self.config.seed}",
                changes={"families": self.config.families, "year": self.year},
            )

    def care_and_claims(self) -> None:
        """A year of referrals and claims, received as an 837 carries them, then adjudicated."""
        with transaction(self.engine) as session:
            members = session.scalar(select(func.count()).select_from(Member))
            generator = CareGenerator(session, random.Random(self.config.seed + 1), self.year)
            care = generator.generate(self.progress(f"Care and referrals, {self.year}", members))
        advance = self.progress("Claims received", len(care))
        for batch in _batches(care, 1000):
            with transaction(self.engine) as session:
                submit_claims(session, batch, actor=ACTOR)
            advance(len(batch))
        self.result.claims = adjudicate_waiting(
            session_factory(self.engine),
            actor=ACTOR,
            progress=self.progress("Claims adjudicated", len(care)),
        )

    def _pcp_pool(self, session: Session) -> list[tuple[Provider, float, float]]:
        if not hasattr(self, "_pool"):
            rows = session.execute(
                select(Provider, Location)
                .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
                .join(Location, Location.id == ProviderLocation.location_id)
                .where(Provider.pcp_eligible)
                .order_by(Provider.id)
            ).all()
            self._pool = [(p.id, p.pediatrics, loc.latitude, loc.longitude) for p, loc in rows]
        return self._pool

    def _enroll(self, session: Session, applicants: list[Applicant]) -> None:
        for applicant in applicants:
            savepoint = session.begin_nested()
            try:
                coverage = enroll_subscriber(
                    session,
                    plan_key=applicant.plan,
                    subscriber=applicant.subscriber,
                    address=applicant.address,
                    effective=applicant.effective,
                    actor=ACTOR,
                    dependents=applicant.dependents,
                    billing_frequency=applicant.billing,
                    subsidized=applicant.subsidized,
                    reason="open enrollment"
                    if applicant.effective.month == 1
                    else "special enrollment period",
                )
            except EnrollmentError as exc:
                savepoint.rollback()
                self.result.refused.append(exc.reason)
                continue
            savepoint.commit()
            self.behaviour[coverage.id] = applicant
            if applicant.chooses_pcp and applicant.plan in (
                "openhmo-silver-hmo",
                "openhmo-gold-pos",
            ):
                self._choose_pcps(session, coverage)

    def _choose_pcps(self, session: Session, coverage: Coverage) -> None:
        members = list(
            session.scalars(
                select(Member)
                .where(Member.subscriber_id == coverage.subscriber_id)
                .order_by(Member.id)
            )
        )
        home = current_address(session, members[0], coverage.effective_date)
        pool = sorted(
            self._pcp_pool(session),
            key=lambda p: distance_miles(home.latitude, home.longitude, p[2], p[3]),
        )
        adults = [p for p in pool if not p[1]][:8]
        pediatricians = [p for p in pool if p[1]][:5]
        family_doctor = self.rng.choice(adults)[0] if adults else None
        design = design_of(session.get(Plan, coverage.plan_id))
        for member in members:
            child = member.age_on(coverage.effective_date) < design.eligibility.pediatrician_max_age
            pick = family_doctor
            if child and pediatricians and self.rng.random() < 0.6:
                pick = self.rng.choice(pediatricians)[0]
            if pick is None:
                continue
            savepoint = session.begin_nested()
            try:
                choose_pcp(
                    session,
                    member=member,
                    provider=session.get(Provider, pick),
                    requested_on=coverage.effective_date,
                    actor=ACTOR,
                    initial=True,
                    reason="chosen at enrollment",
                )
                savepoint.commit()
            except EnrollmentError:
                savepoint.rollback()
                self.result.pcp_choices_refused += 1

    def _life_events(self, session: Session, first: date) -> None:
        if first.month == 1:
            return
        coverages = [
            c
            for c in session.scalars(select(Coverage).order_by(Coverage.id))
            if c.termination_date is None
        ]
        for coverage in coverages:
            roll = self.rng.random()
            subscriber = session.get(Member, coverage.subscriber_id)
            day = first + timedelta(days=self.rng.randint(2, 25))
            if roll < 0.003 and subscriber.age_on(first) < 45:
                add_dependent(
                    session,
                    subscriber=subscriber,
                    effective=day,
                    actor=ACTOR,
                    reason="birth",
                    person=self._person(self.rng.choice("FM"), day, "child", subscriber.last_name),
                )
                self.result.count("births")
            elif roll < 0.0045:
                ended = change_address(
                    session,
                    member=subscriber,
                    effective=day,
                    actor=ACTOR,
                    address=self._street(self.rng.choice(self.outside_zips)),
                    reason="member reported a move",
                )
                self.result.count("moved out of the area" if ended else "moved")
            elif roll < 0.0095:
                change_address(
                    session,
                    member=subscriber,
                    effective=day,
                    actor=ACTOR,
                    address=self._street(self.rng.choice(self.area_zips)),
                    reason="member reported a move",
                )
                self.result.count("moved within the area")

    def _pay(self, session: Session, on: date, kind: str) -> None:
        ledgers = load_ledgers(session)
        payments = []
        for coverage_id, applicant in self.behaviour.items():
            if applicant.payer != kind and not (kind == "on_time" and applicant.payer == "stops"):
                continue
            if applicant.payer == "stops" and on.month >= applicant.stops_in:
                continue
            account = ledgers.get(coverage_id)
            if account is None:
                continue
            due = sum(owed for invoice, owed in account.open() if invoice.due_date <= on)
            if due > 0:
                payments.append(
                    PaymentIn(
                        coverage_id,
                        due,
                        on - timedelta(days=self.rng.randint(0, 3)) if kind == "on_time" else on,
                        reference=f"demo-{coverage_id}-{on.isoformat()}",
                    )
                )
        if payments:
            record_payments(session, payments, actor=ACTOR)
            self.result.count(f"payments ({kind.replace('_', ' ')})", len(payments))


def _batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _write_nppes(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["NPI", "Entity Type Code"])
        writer.writeheader()
        writer.writerows(rows)


def build_demo(
    engine: Engine, config: DemoConfig, progress: ProgressFactory = _no_progress
) -> DemoResult:
    builder = DemoBuilder(engine, config, progress)
    builder.load_plans()
    builder.build_network()
    builder.run_year(builder.applicants())
    builder.care_and_claims()
    refresh_statistics(engine)
    return builder.result

"""The API's tests' world: a real server on a real port over a real database, with people.

`seed_world` builds two families on the Silver HMO, their PCPs, a cardiologist, an
out-of-network doctor, adjudicated claims and a referral, and one account of every role.
`serve` runs the real application under uvicorn in a thread, on a port of its own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import uvicorn
from sqlalchemy import Engine, select

from openhmo.access.accounts import NewAccount, create_account
from openhmo.api.app import create_app
from openhmo.claims.intake import ClaimIn, submit_claim
from openhmo.claims.service import adjudicate_waiting
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.interop.fhir.common import MEMBER_SYSTEM, NPI_SYSTEM
from openhmo.referrals.service import request_referral
from support import ACTOR, choose_pcp_for, family, load_examples, person, price_network, provider

PASSWORD = "correct horse battery staple"
RATES = {"99213": 10000, "99214": 15000, "93000": 4000, "99203": 12000}
SIGNING_KEY = "test-signing-key-" + "x" * 32
DAY = date(2026, 6, 20)


@dataclass
class World:
    """Who is who: member numbers, NPIs, usernames (all with PASSWORD)."""

    ada: str = ""  # subscriber of family 1
    sam: str = ""  # adult spouse in family 1
    kid: str = ""  # minor child in family 1
    lee: str = ""  # subscriber of family 2
    welby_npi: str = ""  # PCP of family 1
    casey_npi: str = ""  # PCP of family 2
    heart_npi: str = ""  # cardiologist, referred for Ada
    outside_npi: str = ""  # out of network
    claims: dict[str, list[str]] = field(default_factory=dict)  # member number -> claim ids
    referral: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # name -> role


def _claim(member: str, billing: str, code: str, charge: str, key: str, day: date) -> ClaimIn:
    return ClaimIn(
        patient_control_number=key,
        member_number=member,
        billing_npi=billing,
        place_of_service="11",
        diagnosis_codes=["I10"],
        lines=[{"service_date": day, "procedure_code": code, "charge": Decimal(charge)}],
        idempotency_key=key,
    )


def seed_world(engine: Engine) -> World:
    w = World()
    sessions = session_factory(engine)
    with sessions() as s:
        load_examples(s)
        welby = provider(s, last_name="Welby")
        casey = provider(s, last_name="Casey", zip_code="02138")
        heart = provider(s, last_name="Heart", taxonomy="207RC0000X", pcp=False)
        outside = provider(s, last_name="Outside", pcp=False, network_key=None)
        price_network(s, [welby, casey, heart], RATES)
        family(s, children=1)
        lee_cov = _second_family(s)
        members = {m.first_name: m for m in s.scalars(select(Member))}
        ada, sam, kid, lee = members["Ada"], members["Sam"], members["Kid0"], members["Lin"]
        choose_pcp_for(s, [ada, sam, kid], welby)
        choose_pcp_for(s, [lee], casey)
        referral = request_referral(
            s,
            member=ada,
            referring_provider=welby,
            specialist=heart,
            visits=3,
            valid_from=date(2026, 6, 1),
            diagnosis_codes=["I10"],
            actor=ACTOR,
        )
        s.commit()
        w.ada, w.sam, w.kid, w.lee = (
            ada.member_number,
            sam.member_number,
            kid.member_number,
            lee.member_number,
        )
        w.welby_npi, w.casey_npi, w.heart_npi = welby.npi, casey.npi, heart.npi
        w.outside_npi = outside.npi
        w.referral = referral.referral_number
        assert lee_cov is not None
        when = datetime(2026, 6, 21, 9, tzinfo=UTC)
        plan = [
            (w.ada, w.welby_npi, "99213", "180.00", "ada-pcp"),
            (w.ada, w.heart_npi, "93000", "75.00", "ada-heart"),
            (w.sam, w.welby_npi, "99214", "240.00", "sam-pcp"),
            (w.kid, w.welby_npi, "99213", "180.00", "kid-pcp"),
            (w.lee, w.casey_npi, "99213", "180.00", "lee-pcp"),
            (w.lee, w.outside_npi, "99213", "200.00", "lee-outside"),
        ]
        for member, npi, code, charge, key in plan:
            claim = submit_claim(
                s, _claim(member, npi, code, charge, key, DAY), received_at=when, actor=ACTOR
            )
            w.claims.setdefault(member, []).append(claim.claim_id)
        s.commit()
    adjudicate_waiting(sessions, actor=ACTOR)
    with sessions() as s:
        for name, new in {
            "ada": NewAccount("ada", "member", member_number=w.ada),
            "sam": NewAccount("sam", "member", member_number=w.sam),
            "lee": NewAccount("lee", "member", member_number=w.lee),
            "welby": NewAccount("welby", "provider", provider_npi=w.welby_npi),
            "casey": NewAccount("casey", "provider", provider_npi=w.casey_npi),
            "heart": NewAccount("heart", "provider", provider_npi=w.heart_npi),
            "staff": NewAccount("staff", "staff"),
            "clearinghouse": NewAccount("clearinghouse", "system"),
        }.items():
            create_account(s, new, PASSWORD, actor=ACTOR)
            w.accounts[name] = new.role
        s.commit()
    return w


def _second_family(s):
    from openhmo.enrollment.service import enroll_subscriber
    from support import CAMBRIDGE

    coverage = enroll_subscriber(
        s,
        plan_key="openhmo-silver-hmo",
        subscriber=person("Lin", date(1979, 9, 9), "F", "self", last="Lee"),
        address=CAMBRIDGE,
        effective=date(2026, 1, 1),
        actor=ACTOR,
        dependents=[],
    )
    s.commit()
    return coverage


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(engine: Engine, *, lifespan: str = "off") -> Iterator[str]:
    """The real application on a real port of loopback; yields its base URL.

    The start-up warming (api.app.warm) is off unless asked for: most tests' worlds are
    small and it would only cost them time."""
    app = create_app(engine, key=SIGNING_KEY)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.adjudicator.close()  # its thread, when lifespan="off" left it running


def token(base: str, username: str, *, scope: str | None = None) -> str:
    data = {"grant_type": "password", "username": username, "password": PASSWORD}
    if username == "clearinghouse":
        data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    auth = ("clearinghouse", PASSWORD) if username == "clearinghouse" else None
    answer = httpx.post(f"{base}/auth/token", data=data, auth=auth, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


def client(base: str, username: str | None = None) -> httpx.Client:
    headers = {"Accept": "application/fhir+json"}
    if username:
        headers["Authorization"] = f"Bearer {token(base, username)}"
    return httpx.Client(base_url=base, headers=headers, timeout=20)


def fhir_claim(
    member: str,
    npi: str,
    key: str,
    *,
    code: str = "99213",
    charge: str = "180.00",
    day: str = "2026-06-22",
    diagnosis: str = "I10",
) -> dict:
    """A one-line professional Claim as a provider's system sends it to Claim/$submit."""
    return {
        "resourceType": "Claim",
        "identifier": [{"system": "https://office.example/claims", "value": key}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"identifier": {"system": MEMBER_SYSTEM, "value": member}},
        "created": day,
        "provider": {"identifier": {"system": NPI_SYSTEM, "value": npi}},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "OpenHMO"}}],
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": diagnosis}]
                },
            }
        ],
        "item": [
            {
                "sequence": 1,
                "servicedDate": day,
                "productOrService": {
                    "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]
                },
                "net": {"value": Decimal(charge), "currency": "USD"},
            }
        ],
    }


def fhir_eligibility(
    member: str,
    birth: str | None = None,
    *,
    day: str = "2026-06-22",
    purposes: tuple[str, ...] = ("validation", "benefits"),
) -> dict:
    """A CoverageEligibilityRequest; with `birth`, the patient contained with their birth
    date, as a provider's system must send it."""
    request = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": list(purposes),
        "created": day,
        "servicedDate": day,
        "insurer": {"display": "OpenHMO"},
        "patient": {"identifier": {"system": MEMBER_SYSTEM, "value": member}},
    }
    if birth:
        request["contained"] = [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"system": MEMBER_SYSTEM, "value": member}],
                "birthDate": birth,
            }
        ]
        request["patient"] = {"reference": "#patient"}
    return request

"""The round trip a clearinghouse would see: 834 in, 278 in, 837 in, adjudication, 835 out.

An employer's 834 enrolls a family on the Silver HMO with their PCP; the PCP's 278 asks
for a cardiology referral and gets it; the providers' 837 bills a PCP visit, the referred
cardiology visit, a visit to the cardiologist without a referral and a visit by an
out-of-network doctor; OpenHMO adjudicates them and pays with 835s. Every amount of every
835 must be the engine's decision, to the cent, and every answer valid X12 (pyx12).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from openhmo.claims.intake import ClaimIn
from openhmo.claims.models import Claim, LineDecision
from openhmo.claims.service import adjudicate_waiting
from openhmo.db import session_factory
from openhmo.enrollment.models import Member
from openhmo.interop.x12 import write837
from openhmo.interop.x12.ingest import ingest_file
from openhmo.interop.x12.remit835 import check_balance
from openhmo.interop.x12.syntax import read_segments
from openhmo.referrals.models import Referral
from openhmo.remittance.service import run_remittance
from support import load_examples, price_network, provider
from x12_validate import pyx12_validate

WHEN = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)
RATES = {"99213": 10000, "99214": 15000, "93000": 4000}


def _world(engine):
    with session_factory(engine)() as s:
        load_examples(s)
        pcp = provider(s, last_name="Welby")
        cardio = provider(s, last_name="Heart", taxonomy="207RC0000X", pcp=False)
        stranger = provider(
            s, last_name="Outside", taxonomy="207RC0000X", pcp=False, network_key=None
        )
        price_network(s, [pcp, cardio], RATES)
        s.commit()
        return pcp.npi, cardio.npi, stranger.npi


def _834(pcp: str) -> str:
    segments = [
        "ST*834*0001*005010X220A1",
        "BGN*00*ROUNDTRIP-1*20260101*0900****2",
        "N1*P5*ACME WIDGETS*FI*123456789",
        "N1*IN*OPENHMO HEALTH PLAN*FI*987654321",
        "INS*Y*18*021*28*A***FT",
        "REF*0F*ACME7001",
        "DTP*356*D8*20260101",
        "NM1*IL*1*OKAFOR*ADA",
        "N3*1 BEACON ST",
        "N4*BOSTON*MA*02108",
        "DMG*D8*19850214*F",
        "HD*021**HMO*openhmo-silver-hmo*FAM",
        "DTP*348*D8*20260101",
        "LX*1",
        f"NM1*P3*1*WELBY*MARCUS****XX*{pcp}",
        "INS*N*19*021*28*A",
        "REF*0F*ACME7001",
        "NM1*IL*1*OKAFOR*KEMI",
        "DMG*D8*20160301*F",
        "HD*021**HMO*openhmo-silver-hmo*FAM",
        "DTP*348*D8*20260101",
        "LX*1",
        f"NM1*P3*1*WELBY*MARCUS****XX*{pcp}",
    ]
    return _interchange("BE", "005010X220A1", segments)


def _278(member: str, pcp: str, cardio: str) -> str:
    segments = [
        "ST*278*0001*005010X217",
        "BHT*0007*13*RT0001*20260601*0800",
        "HL*1**20*1",
        "NM1*X3*2*OPENHMO HEALTH PLAN*****PI*OPENHMO",
        "HL*2*1*21*1",
        f"NM1*1P*1*WELBY*MARCUS****XX*{pcp}",
        "HL*3*2*22*1",
        f"NM1*IL*1*OKAFOR*ADA****MI*{member}",
        "DMG*D8*19850214*F",
        "HL*4*3*EV*0",
        "TRN*1*RT0001*9012345678",
        "UM*SC*I*3*11:B",
        "DTP*AAH*RD8*20260601-20260831",
        "HI*ABK:I209",
        "HSD*VS*2",
        f"NM1*SJ*1*HEART*PAT****XX*{cardio}",
        "PRV*PE*PXC*207RC0000X",
    ]
    return _interchange("HI", "005010X217", segments)


def _interchange(functional_id: str, version: str, segments: list[str]) -> str:
    body = [*segments, f"SE*{len(segments) + 1}*0001"]
    return (
        "~\n".join(
            [
                "ISA*00*          *00*          *ZZ*SENDER1        *ZZ*OPENHMO        "
                "*260101*0900*^*00501*000000777*0*T*:",
                f"GS*{functional_id}*SENDER1*OPENHMO*20260101*0900*777*X*{version}",
                *body,
                "GE*1*777",
                "IEA*1*000000777",
            ]
        )
        + "~\n"
    )


def _value(text: str, segment: str, qualifier: str | None = None, n: int = 2) -> str | None:
    for _, seg in read_segments(text.encode() if isinstance(text, str) else text):
        if seg.id == segment and (qualifier is None or seg.get(1) == qualifier):
            return seg.get(n)
    return None


def test_834_278_837_adjudication_835_round_trip(engine, tmp_path):
    import io

    pcp, cardio, stranger = _world(engine)
    out = tmp_path / "out"
    # 834: the family enrolled, their PCP chosen.
    (tmp_path / "enroll.834").write_text(_834(pcp))
    enrolled = ingest_file(engine, tmp_path / "enroll.834", out, actor="test:x12", now=WHEN)
    assert [s.status for s in enrolled.sets] == ["A"]
    assert len(enrolled.sets[0].applied) == 2 and not enrolled.sets[0].rejected
    with session_factory(engine)() as s:
        ada = s.scalar(select(Member).where(Member.first_name.ilike("ada")))
        kemi = s.scalar(select(Member).where(Member.first_name.ilike("kemi")))
        assert kemi.subscriber_id == ada.id
        ada_number, kemi_number = ada.member_number, kemi.member_number
    # 278: the PCP asks for a cardiology referral for Ada, and gets it.
    (tmp_path / "refer.278").write_text(_278(ada_number, pcp, cardio))
    referred = ingest_file(engine, tmp_path / "refer.278", out, actor="test:x12", now=WHEN)
    assert [s.status for s in referred.sets] == ["A"]
    answer = (out / "refer.278.278").read_text()
    assert pyx12_validate(out / "refer.278.278")[0]
    # HCR01 A1: certified in total; HCR02: our referral number, as the guide carries it.
    assert _value(io.BytesIO(answer.encode()), "HCR", n=1) == "A1"
    referral_number = _value(io.BytesIO(answer.encode()), "HCR", n=2)
    with session_factory(engine)() as s:
        referral = s.scalar(select(Referral).where(Referral.referral_number == referral_number))
        assert referral is not None and referral.status == "approved"

    # 837: four claims from three providers.
    def claim(pcn, member, npi, code, charge, day, **extra):
        return ClaimIn(
            patient_control_number=pcn,
            member_number=member,
            billing_npi=npi,
            place_of_service="11",
            diagnosis_codes=["I20.9"],
            lines=[{"service_date": day, "procedure_code": code, "charge": charge}],
            **extra,
        )

    people = {
        ada_number: write837.Patient(ada_number, "OKAFOR", "ADA", date(1985, 2, 14), "F"),
        kemi_number: write837.Patient(kemi_number, "OKAFOR", "KEMI", date(2016, 3, 1), "F"),
    }
    claims = [
        (claim("PCP-1", kemi_number, pcp, "99213", "140.00", date(2026, 6, 2)), pcp),
        (
            claim(
                "CARD-1",
                ada_number,
                cardio,
                "99214",
                "260.00",
                date(2026, 6, 10),
                referral_number=referral_number,
            ),
            cardio,
        ),
        (claim("CARD-2", kemi_number, cardio, "93000", "90.00", date(2026, 6, 11)), cardio),
        (claim("OUT-1", ada_number, stranger, "99214", "300.00", date(2026, 6, 12)), stranger),
    ]
    items = [
        (c, people[c.member_number], write837.BillingProvider(npi, f"PROVIDER {npi}"))
        for c, npi in sorted(claims, key=lambda x: x[1])
    ]
    (tmp_path / "claims.837").write_text(write837.interchange(items, control=778).render())
    billed = ingest_file(engine, tmp_path / "claims.837", out, actor="test:x12", now=WHEN)
    assert billed.claims_accepted == 4 and billed.claims_rejected == 0
    assert pyx12_validate(out / "claims.837.277")[0] and pyx12_validate(out / "claims.837.999")[0]
    adjudicated = adjudicate_waiting(session_factory(engine), actor="test:x12")
    assert adjudicated.claims == 4 and not adjudicated.errors
    # 835: one per payee, every amount the engine's.
    with session_factory(engine)() as s, s.begin():
        run = run_remittance(s, payment_date=date(2026, 6, 30), actor="test:x12")
    paid_by_835: dict[str, dict] = {}
    for n, payee in enumerate(run.payees):
        path = tmp_path / f"payee{n}.835"
        path.write_text(payee.x12)
        assert check_balance(path) == []
        ok, errors = pyx12_validate(path)
        assert ok, errors
        claim_id = None
        for _, seg in read_segments(io.BytesIO(payee.x12.encode())):
            if seg.id == "CLP":
                claim_id = seg.get(7)
                paid_by_835[claim_id] = {
                    "charge": seg.get(3),
                    "paid": seg.get(4),
                    "member": seg.get(5) or "0",
                    "status": seg.get(2),
                    "lines": [],
                    "cas": 0,
                }
            elif seg.id == "SVC":
                paid_by_835[claim_id]["lines"].append((seg.get(2), seg.get(3)))
            elif seg.id == "CAS":
                amounts = [seg.get(k) for k in range(3, len(seg.elements), 3)]
                paid_by_835[claim_id]["cas"] += sum(_cents(a) for a in amounts if a)
    with session_factory(engine)() as s:
        stored = {c.patient_control_number: c for c in s.scalars(select(Claim))}
        assert set(paid_by_835) == {c.claim_id for c in stored.values()}
        for claim_row in stored.values():
            decisions = s.scalars(
                select(LineDecision)
                .where(LineDecision.claim_id == claim_row.id, LineDecision.superseded_at.is_(None))
                .order_by(LineDecision.line_number)
            ).all()
            sent = paid_by_835[claim_row.claim_id]
            assert _cents(sent["charge"]) == claim_row.total_charge_cents
            assert _cents(sent["paid"]) == sum(d.plan_paid_cents or 0 for d in decisions)
            assert _cents(sent["member"]) == sum(d.member_share_cents or 0 for d in decisions)
            assert [(_cents(c), _cents(p)) for c, p in sent["lines"]] == [
                (d.charge_cents, d.plan_paid_cents or 0) for d in decisions
            ]
            # charged = paid + adjustments (the member's share is among them, as PR).
            assert _cents(sent["charge"]) == _cents(sent["paid"]) + sent["cas"]
        # The engine decided what a real HMO would: the referred visit paid, the
        # unreferred specialist and the out-of-network doctor denied.
        status = {pcn: paid_by_835[c.claim_id]["status"] for pcn, c in stored.items()}
        assert status["PCP-1"] == "1" and status["CARD-1"] == "1"
        assert status["CARD-2"] == "4" and status["OUT-1"] == "4"
        assert _cents(paid_by_835[stored["CARD-1"].claim_id]["paid"]) > 0


def _cents(text: str) -> int:
    from openhmo.money import parse_money

    return parse_money(text or "0")

"""Import a CMS QHP machine-readable provider directory (providers.json, plans.json).

Each provider record (an INDIVIDUAL or a FACILITY) becomes a Provider with its
addresses, specialty, languages and "accepting" status; each of its plan references
(plan_id + network_tier) puts it in the network "qhp-<plan id>-<tier>" (for example
"qhp-12345xx9876543-preferred") by a contract for the plan years it lists (January 1
of the first year to December 31 of the last; a gap in the years starts a new contract).

With plans.json, the plans name the networks, and a reference to a plan or tier the
plans file does not have is rejected. A record with an invalid NPI, an unknown ZIP or
an unknown "accepting" value is rejected with its record number and field; the other
records are imported. Re-importing the same file updates, never duplicates.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from openhmo.network.importers.report import ImportFileError, ImportReport, read_json
from openhmo.network.service import (
    LocationInfo,
    NetworkDataError,
    ProviderInfo,
    save_contract,
    save_network,
    save_provider,
)
from openhmo.network.taxonomy import UnknownTaxonomy, taxonomy_for_specialty

ACCEPTING = {"accepting": True, "not accepting": False, "accepting in some locations": True}
SEX = {"male": "M", "female": "F", "other": "U", "m": "M", "f": "F"}
FIELDS = {
    "taxonomy_code": "specialty",
    "last_name": "name.last",
    "organization_name": "facility_name",
    "zip_code": "addresses.zip",
}


def network_key(plan_id: str, tier: str) -> str:
    return f"qhp-{plan_id.strip().lower()}-{tier.strip().lower().replace('_', '-')}"


def _plans(path: Path, report: ImportReport) -> dict[str, tuple[str, set[str]]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise ImportFileError(f"{path}: expected a JSON list of plans")
    plans = {}
    for i, plan in enumerate(data):
        plan_id = plan.get("plan_id") if isinstance(plan, dict) else None
        if not plan_id:
            report.reject(f"{path.name}, plan {i + 1} ([{i}])", "plan_id", "missing")
            continue
        tiers = {
            str(n.get("network_tier", "")).upper()
            for n in plan.get("network") or []
            if isinstance(n, dict)
        }
        plans[str(plan_id)] = (str(plan.get("marketing_name") or plan_id), tiers)
    return plans


def _runs(years: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of years: [2018, 2019, 2021] -> [(2018, 2019), (2021, 2021)]."""
    runs: list[tuple[int, int]] = []
    for year in sorted(set(years)):
        if runs and runs[-1][1] == year - 1:
            runs[-1] = (runs[-1][0], year)
        else:
            runs.append((year, year))
    return runs


def _provider_info(record: dict[str, Any], source: str, report: ImportReport) -> ProviderInfo:
    kind = str(record.get("type", "")).upper()
    if kind not in ("INDIVIDUAL", "FACILITY"):
        raise NetworkDataError(
            f"type {record.get('type')!r} is not INDIVIDUAL or FACILITY", field="type"
        )
    npi = str(record.get("npi", "")).strip()
    texts = record.get("specialty") if kind == "INDIVIDUAL" else record.get("facility_type")
    texts = [str(t) for t in (texts or []) if str(t).strip()]
    taxonomy = None
    for text in texts:
        try:
            taxonomy = taxonomy or taxonomy_for_specialty(text)
        except UnknownTaxonomy:
            report.note(
                f"specialty {text!r} (NPI {npi}) is not mapped to a taxonomy code; kept as text"
            )
    accepting = None
    if record.get("accepting") is not None:
        value = str(record["accepting"]).strip().lower()
        if value not in ACCEPTING:
            raise NetworkDataError(
                f"{record['accepting']!r} is not one of {', '.join(ACCEPTING)}", field="accepting"
            )
        accepting = ACCEPTING[value]
    name = record.get("name") or {}
    if not isinstance(name, dict):
        raise NetworkDataError("name is not an object with first and last", field="name")
    addresses = record.get("addresses") or []
    if not isinstance(addresses, list):
        raise NetworkDataError("addresses is not a list", field="addresses")
    if not all(isinstance(a, dict) for a in addresses):
        raise NetworkDataError("an address is not a JSON object", field="addresses")
    locations = [
        LocationInfo(
            line1=str(a.get("address") or ""),
            line2=a.get("address_2"),
            city=str(a.get("city") or ""),
            state=str(a.get("state") or ""),
            zip_code=str(a.get("zip") or ""),
            phone=a.get("phone"),
        )
        for a in addresses
    ]
    return ProviderInfo(
        npi=npi,
        entity_type="individual" if kind == "INDIVIDUAL" else "organization",
        first_name=name.get("first"),
        last_name=name.get("last"),
        credential=name.get("suffix"),
        organization_name=record.get("facility_name") if kind == "FACILITY" else None,
        sex=SEX.get(str(record.get("gender", "")).lower()),
        taxonomy_code=taxonomy,
        specialty="; ".join(texts) or None,
        accepting_new_patients=accepting,
        languages=record.get("languages"),
        locations=locations,
        source=source,
    )


def import_qhp(
    session: Session,
    providers_file: Path,
    plans_file: Path | None = None,
    *,
    actor: str,
    reason: str = "",
) -> ImportReport:
    """Import a QHP providers.json (and optionally its plans.json) in the caller's transaction."""
    providers_file = Path(providers_file)
    reason = reason or f"QHP provider directory import of {providers_file.name}"
    report = ImportReport(source=providers_file.name)
    plans = _plans(Path(plans_file), report) if plans_file else None
    data = read_json(providers_file)
    if not isinstance(data, list):
        raise ImportFileError(f"{providers_file}: expected a JSON list of providers")
    source = f"qhp:{providers_file.name}"
    for i, record in enumerate(data):
        where = (
            f"{providers_file.name}, record {i + 1} ([{i}], NPI {record.get('npi')})"
            if isinstance(record, dict)
            else f"{providers_file.name}, record {i + 1}"
        )
        if not isinstance(record, dict):
            report.reject(where, None, "not a JSON object")
            continue
        with report.record(session, where, FIELDS) as counts:
            saved = save_provider(
                session, _provider_info(record, source, report), actor=actor, reason=reason
            )
            counts.count(saved, "provider")
            provider = saved.record
            for j, plan in enumerate(record.get("plans") or []):
                plan_where = f"{where} plans[{j}]"
                if not isinstance(plan, dict):
                    report.reject(plan_where, None, "not a JSON object")
                    continue
                plan_id = str(plan.get("plan_id") or "").strip()
                tier = str(plan.get("network_tier") or "").strip().upper()
                years = [y for y in plan.get("years") or [] if isinstance(y, int)]
                if not plan_id or not tier:
                    report.reject(plan_where, "plan_id", "plan_id and network_tier are required")
                    continue
                if not years:
                    report.reject(plan_where, "years", "no plan years: cannot date the contract")
                    continue
                if plans is not None and plan_id not in plans:
                    report.reject(plan_where, "plan_id", f"plan {plan_id} is not in the plans file")
                    continue
                if plans is not None and tier not in plans[plan_id][1]:
                    report.reject(
                        plan_where, "network_tier", f"plan {plan_id} has no network tier {tier}"
                    )
                    continue
                key = network_key(plan_id, tier)
                title = plans[plan_id][0] if plans is not None else f"QHP {plan_id}"
                counts.count(
                    save_network(session, key, f"{title} ({tier})", actor=actor, reason=reason),
                    "network",
                )
                for first, last in _runs(years):
                    counts.count(
                        save_contract(
                            session,
                            network_key=key,
                            provider=provider,
                            effective_from=date(first, 1, 1),
                            effective_to=date(last, 12, 31),
                            source=f"{source}#npi={provider.npi}/plan={plan_id}/tier={tier}/{first}",
                            actor=actor,
                            reason=reason,
                        ),
                        "contract",
                    )
    return report

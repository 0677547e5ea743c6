"""Who is in a network on a date: the one query every rule about "in network" uses.

A provider is in a network on a day when a contract of that network, effective that
day, names the provider, or names the organization the provider belongs to.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from openhmo.network.models import Contract, Network, Provider


def _effective(day: date):
    return and_(
        Contract.effective_from <= day,
        or_(Contract.effective_to.is_(None), Contract.effective_to >= day),
    )


def in_network_clause(network_key: str, day: date):
    """A SQL condition on Provider: in the network `network_key` on `day`."""
    return exists(
        select(Contract.id)
        .join(Network, Network.id == Contract.network_id)
        .where(
            Network.key == network_key,
            _effective(day),
            or_(
                Contract.provider_id == Provider.id,
                and_(
                    Contract.organization_id.is_not(None),
                    Contract.organization_id == Provider.organization_id,
                ),
            ),
        )
    )


def is_in_network(session: Session, provider_id: int, network_key: str, day: date) -> bool:
    return (
        session.scalar(
            select(Provider.id).where(
                Provider.id == provider_id, in_network_clause(network_key, day)
            )
        )
        is not None
    )

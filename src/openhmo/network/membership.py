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


def in_network_set_clause(network_key: str, day: date):
    """The same condition as in_network_clause, as two uncorrelated IN lists.

    For questions about most of a network at once (how many providers it has): the
    database builds each list once, where the EXISTS of in_network_clause probes the
    contracts once per provider. For a page of providers, use in_network_clause.
    """
    contracts = (
        select(Contract.id)
        .join(Network, Network.id == Contract.network_id)
        .where(Network.key == network_key, _effective(day))
    )
    return or_(
        Provider.id.in_(
            contracts.with_only_columns(Contract.provider_id).where(
                Contract.provider_id.is_not(None)
            )
        ),
        Provider.organization_id.in_(
            contracts.with_only_columns(Contract.organization_id).where(
                Contract.organization_id.is_not(None)
            )
        ),
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

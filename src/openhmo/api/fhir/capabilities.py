"""What this server supports, declared by each area module beside its routes.

metadata.py turns the declarations into the CapabilityStatement, so what /fhir/metadata
says and what the routes do are written in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # FHIR search parameter type: string, token, reference, date, number, special
    documentation: str


@dataclass(frozen=True)
class Operation:
    name: str  # e.g. "submit"
    definition: str  # canonical URL of the OperationDefinition


@dataclass
class ResourceSupport:
    type: str
    interactions: tuple[str, ...]  # read, search-type, create
    search: tuple[SearchParam, ...] = ()
    operations: tuple[Operation, ...] = ()
    profiles: tuple[str, ...] = ()
    documentation: str = ""
    public: bool = False  # readable without a token
    includes: tuple[str, ...] = ()  # _include values its searches take
    revincludes: tuple[str, ...] = ()  # _revinclude values


@dataclass
class Registry:
    resources: dict[str, ResourceSupport] = field(default_factory=dict)

    def declare(self, support: ResourceSupport) -> None:
        self.resources[support.type] = support


REGISTRY = Registry()


def declare(support: ResourceSupport) -> None:
    REGISTRY.declare(support)

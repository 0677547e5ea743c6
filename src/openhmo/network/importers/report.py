"""What an import did: counts of records added, updated and unchanged, and every rejection.

Each record of a file is written inside its own savepoint (`ImportReport.record`): a
record that fails validation or that the database refuses is rolled back whole and
reported with where it was (line, record number or JSON path) and which field, while
the file's other records go through in the same transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from openhmo.network.service import NetworkDataError, Saved


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong shape); nothing was written."""


@dataclass(frozen=True)
class Rejection:
    where: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.field}: {self.message}"
            if self.field
            else f"{self.where}: {self.message}"
        )


@dataclass
class _Pending:
    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    def count(self, saved: Saved[Any], kind: str, n: int = 1) -> None:
        getattr(self, saved.action)[kind] += n


@dataclass
class ImportReport:
    source: str
    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def reject(self, where: str, field: str | None, message: str) -> None:
        self.rejections.append(Rejection(where, field, message))

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    @contextmanager
    def record(
        self, session: Session, where: str, fields: dict[str, str] | None = None
    ) -> Iterator[_Pending]:
        """Write one record all or nothing; a refusal becomes a rejection at `where`.

        `fields` maps the service's field names to the file's own (e.g. npi -> "NPI").
        """
        pending = _Pending()
        try:
            with session.begin_nested():
                yield pending
        except NetworkDataError as exc:
            name = (fields or {}).get(exc.field or "", exc.field)
            self.reject(where, name, str(exc))
            return
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # A file from outside may hold anything where a record should be; it is that
            # record's fault, reported, not the end of the import.
            self.reject(where, None, f"the record is malformed: {type(exc).__name__}: {exc}")
            return
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).splitlines()[0]
            self.reject(where, None, f"the database refused the record: {detail}")
            return
        for name in ("added", "updated", "unchanged"):
            getattr(self, name).update(getattr(pending, name))

    def summary(self) -> str:
        def part(counter: Counter[str]) -> str:
            return ", ".join(f"{n} {kind}" for kind, n in sorted(counter.items()) if n) or "none"

        return (
            f"{self.source}: added {part(self.added)}; updated {part(self.updated)}; "
            f"unchanged {part(self.unchanged)}; rejected {self.rejected}"
        )


def read_json(path: Path) -> Any:
    """A JSON file with every number that has a fraction read as Decimal, never float."""
    try:
        with Path(path).open(encoding="utf-8-sig") as f:
            return json.load(f, parse_float=Decimal)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None

"""Tamper evidence: recompute every stream's hash chain from the stored rows.

A row hashed with scheme 2 has its ledger position in the hash; a scheme-1 row (from
before positions were covered) is checked for position only against its stream's
order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from infra.audit.bundle_check import GENESIS, UNSEALED, event_hash
from infra.audit.store import AuditStore, StoredRow


@dataclass(frozen=True)
class Problem:
    stream: UUID
    version: int
    position: int | None
    what: str

    def __str__(self) -> str:
        where = f" (ledger position {self.position})" if self.position else ""
        return f"stream {self.stream} version {self.version}{where}: {self.what}"


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    unsealed: int = 0  # events stored before hash chaining: not covered
    unpositioned: int = 0  # hashed with scheme 1: their ledger position is not covered
    heads: dict[UUID, tuple[int, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_stream(rows: Iterable[StoredRow], report: VerifyReport) -> None:
    expected_version = 1
    head: str | None = None
    stream: UUID | None = None
    last_position = 0
    for row in rows:
        stream = row.originator_id
        report.events += 1
        if row.position <= last_position:
            report.problems.append(
                Problem(stream, row.version, row.position, "is out of ledger order")
            )
        last_position = row.position
        if row.version != expected_version:
            report.problems.append(
                Problem(
                    stream, expected_version, None, f"missing (the next stored is {row.version})"
                )
            )
        expected_version = row.version + 1
        if row.hash is None or row.prev_hash is None:
            if head is None:
                report.unsealed += 1  # an unhashed prefix: verified from its first hashed event
                continue
            report.problems.append(Problem(stream, row.version, row.position, "has no hash"))
            continue
        expected_prev = head or (GENESIS if row.version == 1 else UNSEALED)
        if row.prev_hash != expected_prev:
            report.problems.append(
                Problem(stream, row.version, row.position, "does not chain to its predecessor")
            )
        if row.scheme not in (1, 2):
            report.problems.append(
                Problem(stream, row.version, row.position, f"unknown hash scheme {row.scheme}")
            )
            head = row.hash
            continue
        report.unpositioned += row.scheme == 1
        digest = event_hash(
            row.scheme, row.prev_hash, str(stream), row.version, row.position, row.topic, row.state
        )
        if digest != row.hash:
            what = "content or ledger position" if row.scheme >= 2 else "content"
            report.problems.append(
                Problem(stream, row.version, row.position, f"{what} does not match its hash")
            )
        head = row.hash
    if stream is not None:
        report.streams += 1
        if head is not None:
            report.heads[stream] = (expected_version - 1, head)


def _by_stream(rows: Iterator[StoredRow]) -> Iterator[Iterator[StoredRow]]:
    """Lazily split one ordered row iterator into per-stream iterators."""
    from itertools import groupby

    for _, group in groupby(rows, key=lambda row: row.originator_id):
        yield group


def verify_streams(store: AuditStore, streams: Iterable[UUID]) -> VerifyReport:
    report = VerifyReport()
    for stream in streams:
        _check_stream(store.stream(stream), report)
        _report_removed(store, report, stream)
    return report


def verify_all(store: AuditStore) -> VerifyReport:
    report = VerifyReport()
    for rows in _by_stream(store.everything()):
        _check_stream(rows, report)
    _report_removed(store, report, None)
    return report


def _report_removed(store: AuditStore, report: VerifyReport, stream: UUID | None) -> None:
    for originator_id, version in store.hashed_versions_without_events(stream):
        report.problems.append(
            Problem(originator_id, version, None, "was removed (its hash remains)")
        )

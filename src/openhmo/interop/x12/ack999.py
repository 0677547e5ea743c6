"""The 999 implementation acknowledgment (005010X231A1) of an interchange we read, and its TA1.

One 999 per functional group received: AK1 names the group, and per transaction set AK2,
then an IK3 for each segment in error (its id, its position in the set and the IK304
code), an IK4 for each element in error (position, IK403 code, the bad value), and IK5
with the set's verdict (A accepted, E accepted with errors noted, R rejected) and its
IK502 codes; AK9 sums the group. Problems of the interchange envelope itself go back as a
TA1 (interchange acknowledgment) before the groups.
"""

from __future__ import annotations

from datetime import datetime

from openhmo.interop.x12.envelope import FileRead, Group, Interchange, TransactionSet
from openhmo.interop.x12.writer import Interchange as OutInterchange
from openhmo.interop.x12.writer import answering, composite

VERSION = "005010X231A1"
MAX_IK3 = 999  # IK3 occurs at most 999 times per set (the guide's loop 2100 repeat)
_VALUE = 99


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    # IK404 carries the bad value as received; drop what our own delimiters would split.
    text = "".join(c for c in value if c not in "*~:^\r\n")
    return text[:_VALUE] or None


def _segment_id(text: str) -> str:
    """IK301 is a segment id of 2 or 3 letters and digits: a garbled one is sent as such."""
    clean = "".join(c for c in text.upper() if c.isascii() and c.isalnum())[:3]
    return clean if len(clean) >= 2 else "UNK"


def _set(out, ts: TransactionSet) -> str:
    out.add("AK2", ts.code, ts.control, ts.version if ts.version.startswith("005010") else None)
    # One IK3 per segment in error, its elements' IK4s under it.
    segments: dict[tuple[int, str], list] = {}
    for p in ts.problems:
        segments.setdefault((p.position or 1, _segment_id(p.segment)), []).append(p)
    for (position, segment), problems in list(segments.items())[:MAX_IK3]:
        elements = [p for p in problems if p.element]
        code = "8" if elements else problems[0].code
        out.add("IK3", segment, position, None, code)
        for p in elements[:99]:
            out.add(
                "IK4",
                composite(p.element, p.component) if p.component else p.element,
                None,
                p.element_code or "1",
                _clean(p.value),
            )
    status = ts.status
    codes = [code for code, _ in ts.set_problems][:5]
    if status == "R" and not codes:
        codes = ["5"]
    if status != "R" and ts.problems:
        codes = ["5"]  # accepted, with segments in error noted
    out.add("IK5", status, *codes)
    return status


def _group(interchange: OutInterchange, group: Group, received: Interchange) -> None:
    version = group.version if group.version.startswith("005010") else None
    # GS02/GS03 are 2 to 15 characters; a received group with shorter ones is answered
    # with the interchange's ids.
    sender = group.receiver[:15] if len(group.receiver) >= 2 else received.receiver[:15]
    receiver = group.sender[:15] if len(group.sender) >= 2 else received.sender[:15]
    out_group = interchange.new_group(
        "FA", VERSION, sender=sender or None, receiver=receiver or None
    )
    ts = out_group.new_set("999", VERSION)
    ts.add("AK1", group.functional_id[:2] or "HC", group.control[:9] or "0", version)
    statuses = [_set(ts, s) for s in group.sets]
    accepted = sum(1 for s in statuses if s in ("A", "E"))
    if group.rejected or not group.sets:
        verdict = "R"
    elif accepted == len(statuses):
        # A wrong GE is found after the sets went through: noted, not undone.
        verdict = "E" if "E" in statuses or group.problems else "A"
    else:
        verdict = "P" if accepted else "R"
    codes = [code for code, _ in group.problems][:5]
    ts.add("AK9", verdict, len(group.sets), len(group.sets), accepted, *codes)


def acknowledge(read: FileRead, *, moment: datetime, control: int) -> list[tuple[str, str]]:
    """The answers to each interchange of the file: ("ta1", text) and ("999", text) interchanges."""
    out: list[tuple[str, str]] = []
    for n, received in enumerate(read.interchanges):
        interchange = answering(
            received, control=control + n, moment=moment, sender="OPENHMO", receiver="UNKNOWN"
        )
        if not received.rejected:
            for group in received.groups:
                _group(interchange, group, received)
        if received.problems:
            # The TA1 travels alone, in an interchange of its own, before the 999.
            code = received.problems[0][0]
            ta1 = OutInterchange(
                sender=interchange.sender,
                receiver=interchange.receiver,
                control=control + 500 + n,
                moment=moment,
                usage=interchange.usage,
            )
            ta1.ta1.append(
                [
                    "TA1",
                    received.control[:9].rjust(9, "0"),
                    received.date[:6],
                    received.time[:4],
                    # R: a broken ISA, nothing applied; E: applied, a problem found after.
                    "R" if received.rejected else "E",
                    code,
                ]
            )
            out.append(("ta1", ta1.render()))
        if interchange.groups:
            out.append(("999", interchange.render()))
    return out

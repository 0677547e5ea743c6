"""X12 segments from a file or text, read as a stream: the delimiters, the segments, where
each one is.

An interchange starts with ISA, a segment of fixed width (106 characters) that names the
delimiters: ISA's fourth character separates elements, ISA16 separates components,
ISA11 separates repetitions, and the character after ISA16 ends every segment. Line
breaks after a segment terminator are common and carry no meaning; they are skipped,
and counted, so an error can say the line as well as the segment position.

`read_segments` reads the file in chunks (a 1 GB file never sits in memory) and yields
`Segment`s: the segment id, its elements (element 1 is `elements[1]`, as the guides
number them; `elements[0]` is the id) and its ordinal and line in the file. A file that
is not X12 at all raises `X12FileError` with what was found where.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ISA_LENGTH = 106
CHUNK = 1 << 20


class X12FileError(ValueError):
    """A file that cannot be read as X12 at all: no ISA, a broken ISA, nothing after it."""

    def __init__(self, message: str, *, source: str, line: int = 1, position: int = 0) -> None:
        where = f"{source}, line {line}" + (f", segment {position}" if position else "")
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.position = position
        self.reason = message


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators an interchange declares in its ISA."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"

    @classmethod
    def from_isa(cls, isa: str, source: str) -> Delimiters:
        if len(isa) < ISA_LENGTH or not isa.startswith("ISA"):
            raise X12FileError(
                f"an X12 file starts with an ISA segment of {ISA_LENGTH} characters; found "
                f"{isa[:20]!r}",
                source=source,
            )
        element = isa[3]
        # ISA has 16 elements at fixed positions: a separator at 3, 6, 17, 20, 31, 34, 50,
        # 53, 69, 76, 81, 83, 89, 99, 101, 103.
        for at in (6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103):
            if isa[at] != element:
                raise X12FileError(
                    f"ISA is a fixed-width segment: character {at + 1} should be the element "
                    f"separator {element!r}, found {isa[at]!r} (is an ISA element too long or "
                    "too short?)",
                    source=source,
                )
        component = isa[104]
        terminator = isa[105]
        if terminator in "\r\n":
            raise X12FileError(
                "the segment terminator (the character after ISA16) is a line break; "
                "OpenHMO reads interchanges whose terminator is a printable character such as '~'",
                source=source,
            )
        repetition = isa[82]
        if repetition.isalnum():  # 4010 interchanges carry "U" here: no repetition separator
            repetition = "\x00"
        seen = {element, component, terminator}
        if len(seen) != 3 or element.isalnum() or component.isalnum() or terminator.isalnum():
            raise X12FileError(
                f"the ISA's delimiters must be distinct and not letters or digits: element "
                f"{element!r}, component {component!r}, segment {terminator!r}",
                source=source,
            )
        return cls(element, component, repetition, terminator)


@dataclass(slots=True)
class Segment:
    """One segment: `elements[0]` is its id; element n is `elements[n]`."""

    elements: list[str]
    ordinal: int  # 1-based, in the file
    line: int  # 1-based line of the file where the segment starts
    # The segment as read (its elements joined by the element separator), for the
    # element check's one-pass test (elements.check); "" where a segment was made up.
    text: str = ""

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, n: int) -> str:
        """Element n (1-based), or "" when the segment has fewer elements."""
        return self.elements[n] if n < len(self.elements) else ""

    def __len__(self) -> int:
        return len(self.elements) - 1


def _open(source: str | Path | IO[bytes]) -> tuple[IO[bytes], str, bool]:
    if isinstance(source, str | Path):
        return open(source, "rb"), str(source), True
    return source, getattr(source, "name", "<stream>"), False


def _decode(chunk: bytes) -> str:
    # X12's basic and extended character sets are ASCII; latin-1 maps every byte to one
    # character, so a stray byte is reported as a bad character, never a decoding crash.
    return chunk.decode("latin-1")


def read_segments(
    source: str | Path | IO[bytes], *, chunk_size: int = CHUNK
) -> Iterator[tuple[Delimiters, Segment]]:
    """Every segment of the file, with the delimiters of its interchange.

    A file may hold several interchanges, each with its own ISA and so its own
    delimiters; they are read one after the other.
    """
    stream, name, owned = _open(source)
    try:
        yield from _segments(stream, name, chunk_size)
    finally:
        if owned:
            stream.close()


def _segments(
    stream: IO[bytes], name: str, chunk_size: int
) -> Iterator[tuple[Delimiters, Segment]]:
    for delimiters, raws, ordinal, line in batches(stream, name, chunk_size):
        separator = delimiters.element
        for raw in raws:
            segment, line = make_segment(raw, separator, ordinal, line, name)
            ordinal += 1
            yield delimiters, segment


def make_segment(
    raw: str, separator: str, ordinal: int, line: int, name: str
) -> tuple[Segment, int]:
    """The segment `raw` (its text with the white space before it), and the line after it.

    `ordinal` is the count of segments before it, `line` the line its white space starts on.
    """
    text = raw.lstrip(" \t\r\n")
    if len(text) != len(raw):
        line += raw.count("\n", 0, len(raw) - len(text))
    if not text:
        raise X12FileError(
            "an empty segment (two segment terminators in a row)",
            source=name,
            line=line,
            position=ordinal + 1,
        )
    body = text.rstrip("\r\n")
    return Segment(body.split(separator), ordinal + 1, line, body), line + text.count("\n")


def batches(
    stream: IO[bytes], name: str, chunk_size: int = CHUNK
) -> Iterator[tuple[Delimiters, list[str], int, int]]:
    """The file's segments, a buffer's worth at a time: (delimiters, raw texts, segments
    before them, the line the first starts on). A raw text keeps the white space before
    the segment (for line counting)."""
    for delimiters, block, ordinal, line in blocks(stream, name, chunk_size):
        yield delimiters, block.split(delimiters.segment), ordinal, line


def blocks(
    stream: IO[bytes], name: str, chunk_size: int = CHUNK
) -> Iterator[tuple[Delimiters, str, int, int]]:
    """The file as blocks of whole segments: (delimiters, text, segments before it, the
    line it starts on). The text holds its segments joined by their terminator (none at
    its end); a block never runs past an ISA, whose delimiters may differ."""
    buffer = ""
    pos = 0  # where the next segment starts in `buffer`
    line = 1
    ordinal = 0
    eof = False
    delimiters: Delimiters | None = None

    def fill() -> bool:
        nonlocal buffer, pos, eof
        if eof:
            return False
        chunk = stream.read(chunk_size)
        if not chunk:
            eof = True
            return False
        buffer = buffer[pos:] + _decode(chunk)
        pos = 0
        return True

    while True:
        # White space between segments is skipped; its line breaks are counted.
        while True:
            n = len(buffer)
            while pos < n and buffer[pos] in " \t\r\n":
                if buffer[pos] == "\n":
                    line += 1
                pos += 1
            if pos < n or not fill():
                break
        if pos >= len(buffer):
            if ordinal == 0:
                raise X12FileError("the file is empty", source=name)
            return
        if delimiters is None or buffer.startswith("ISA", pos):
            while len(buffer) - pos < ISA_LENGTH + 1 and fill():
                pass
            if not buffer.startswith("ISA", pos):
                raise X12FileError(
                    f"an X12 interchange starts with 'ISA'; found {buffer[pos : pos + 20]!r}",
                    source=name,
                    line=line,
                )
            delimiters = Delimiters.from_isa(buffer[pos : pos + ISA_LENGTH], name)
        terminator = delimiters.segment
        end = buffer.find(terminator, pos)
        while end < 0 and fill():
            end = buffer.find(terminator, pos)
        if end < 0:
            text = buffer[pos:].strip()
            raise X12FileError(
                f"the last segment {text[:30]!r} has no segment terminator {terminator!r}: "
                "the file is cut short",
                source=name,
                line=line,
                position=ordinal + 1,
            )
        # Every whole segment in the buffer at once, up to the next ISA.
        stop = buffer.rfind(terminator)
        isa = _next_isa(terminator).search(buffer, end, stop + 1)
        if isa is not None:
            stop = isa.start()
        block = buffer[pos:stop]
        yield delimiters, block, ordinal, line
        ordinal += block.count(terminator) + 1
        line += block.count("\n")
        pos = stop + 1


@functools.cache
def _next_isa(terminator: str) -> re.Pattern:
    return re.compile(re.escape(terminator) + r"(?=[ \t\r\n]*ISA)")

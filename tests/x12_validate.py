"""Validate X12 files with pyx12, using its stock maps plus the 5010 maps in tests/x12_maps.

pyx12 4.0.0 ships no maps for 005010X279A1 (270/271) or 005010X217 (278); tests/x12_maps has
them (see its README.md). Given a ``map_path``, pyx12 reads everything from that one
directory -- maps.xml, codes.xml, dataele.xml, the x12.control maps and every map file --
and does not fall back to the maps inside the package for what is missing. So this module
builds such a directory once per process, in a temporary directory removed at exit:

* every file of pyx12's own map directory (symbolic links, or copies where links fail);
* the map files of tests/x12_maps;
* tests/x12_maps/maps.xml: pyx12's maps.xml, every stock entry kept, plus ours;
* dataele.xml: pyx12's, plus the entries of tests/x12_maps/dataele.extra.xml.

The stock transactions (835 005010X221A1, 999 005010X231A1, 277 005010X214, 834
005010X220A1, 837 005010X222A1, the 4010 ones) therefore validate exactly as with pyx12's
defaults.

pyx12 picks the 278 map by BHT02 only for 004010X094(A1); for 005010X217 it takes the first
entry of maps.xml, the request map. So a second directory, whose maps.xml lists the response
map first, is used for files whose 005010X217 transactions are responses (BHT02 = 11).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pyx12
import pyx12.errors
import pyx12.params
import pyx12.x12n_document

MAPS_DIR = Path(__file__).resolve().parent / "x12_maps"
STOCK_MAP_DIR = Path(pyx12.__file__).resolve().parent / "map"

X217 = "005010X217"
X217_RESPONSE_PURPOSE = "11"  # BHT02 of a 278 response; requests use 01, 13 or 36

_WRITTEN = ("maps.xml", "dataele.xml")  # written into the map directory, never linked
_OWN_FILES = ("maps.xml", "dataele.extra.xml")
_map_dirs: dict[bool, Path] = {}


def _link_or_copy(src: Path, dst: Path) -> None:
    _remove(dst)
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    """Remove path; a link is removed, never written through (it may point into pyx12)."""
    if path.is_symlink() or path.exists():
        path.unlink()


def _write(tree: ET.ElementTree, path: Path) -> None:
    _remove(path)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _write_maps_index(dst: Path, response_278_first: bool) -> None:
    tree = ET.parse(MAPS_DIR / "maps.xml")
    if response_278_first:
        for version in tree.getroot().iter("version"):
            entries = list(version)
            x217 = [e for e in entries if e.get("vriic") == X217]
            if not x217:
                continue
            first = entries.index(x217[0])
            for entry in x217:
                version.remove(entry)
            ordered = sorted(x217, key=lambda e: e.get("tspc") != X217_RESPONSE_PURPOSE)
            for offset, entry in enumerate(ordered):
                version.insert(first + offset, entry)
    _write(tree, dst / "maps.xml")


def _write_data_elements(dst: Path) -> None:
    tree = ET.parse(STOCK_MAP_DIR / "dataele.xml")
    root = tree.getroot()
    known = {e.get("ele_num") for e in root.iter("data_ele")}
    for extra in ET.parse(MAPS_DIR / "dataele.extra.xml").getroot().iter("data_ele"):
        if extra.get("ele_num") not in known:
            root.append(extra)
    _write(tree, dst / "dataele.xml")


def map_path(response_278_first: bool = False) -> Path:
    """The pyx12 map directory: stock maps plus tests/x12_maps (built on first use)."""
    if response_278_first in _map_dirs:
        return _map_dirs[response_278_first]
    dst = Path(tempfile.mkdtemp(prefix="pyx12-maps-"))
    atexit.register(shutil.rmtree, dst, ignore_errors=True)
    for src in STOCK_MAP_DIR.iterdir():
        if src.is_file() and src.suffix in (".xml", ".xsd", ".dtd") and src.name not in _WRITTEN:
            _link_or_copy(src, dst / src.name)
    for src in MAPS_DIR.glob("*.xml"):
        if src.name not in _OWN_FILES:
            _link_or_copy(src, dst / src.name)
    _write_maps_index(dst, response_278_first)
    _write_data_elements(dst)
    _map_dirs[response_278_first] = dst
    return dst


def _segments(text: str) -> list[list[str]]:
    """Split an interchange into segments of elements, using the ISA's delimiters."""
    start = text.find("ISA")
    if start < 0 or len(text) < start + 106:
        return []
    element_sep = text[start + 3]
    segment_term = text[start + 105]
    return [
        seg.strip().split(element_sep) for seg in text[start:].split(segment_term) if seg.strip()
    ]


def x217_purposes(path: str | Path) -> set[str]:
    """The kinds ("request", "response") of the 005010X217 278s in a file."""
    kinds: set[str] = set()
    version = ""
    in_278 = False
    text = Path(path).read_text(encoding="latin-1")
    for seg in _segments(text):
        seg_id = seg[0]
        if seg_id == "GS":
            version = seg[8] if len(seg) > 8 else ""
        elif seg_id == "ST":
            in_278 = len(seg) > 1 and seg[1] == "278" and version.startswith(X217)
        elif seg_id == "BHT" and in_278:
            purpose = seg[2] if len(seg) > 2 else ""
            kinds.add("response" if purpose == X217_RESPONSE_PURPOSE else "request")
            in_278 = False
    return kinds


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def pyx12_validate(path: str | Path) -> tuple[bool, list[str]]:
    """Validate an X12 file with pyx12; return (valid, pyx12's error messages).

    Valid means pyx12 found the file valid and logged no error. The messages are those
    pyx12 logs at level ERROR (through the ``pyx12`` loggers), in order; an exception pyx12
    raises (no map for the GS08 version, a broken ISA) is reported as one more message.
    """
    path = Path(path)
    kinds = x217_purposes(path)
    if len(kinds) > 1:
        return False, [
            f"{path.name}: mixes 005010X217 278 requests and responses; pyx12 validates a "
            "file with one 278 map, so validate them in separate files"
        ]
    return run_pyx12(path, map_path(response_278_first=kinds == {"response"}))


def run_pyx12(path: str | Path, map_dir: Path | None) -> tuple[bool, list[str]]:
    """Run pyx12 on one file with the given map directory (None: pyx12's own maps)."""
    logger = logging.getLogger("pyx12")
    handler = _Collect()
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=str(path),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            map_path=None if map_dir is None else str(map_dir),
        )
    except (pyx12.errors.EngineError, pyx12.errors.X12Error, OSError) as exc:
        handler.messages.append(f"{type(exc).__name__}: {exc}")
        ok = False
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return bool(ok) and not handler.messages, handler.messages

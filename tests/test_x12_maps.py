"""pyx12 with the 5010 maps of tests/x12_maps: 270/271 (005010X279A1) and 278 (005010X217).

Corpus files are read from the shared corpus (OPENHMO_CORPUS, see conftest.py), never copied
into the repository; their tests skip, saying so, when it is missing. Broken variants are
written to the test's temporary directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

import x12_validate
from conftest import CORPUS
from x12_validate import MAPS_DIR, STOCK_MAP_DIR, map_path, pyx12_validate, run_pyx12

DATA = Path(__file__).resolve().parent / "data" / "x12"
X12_CORPUS = CORPUS / "x12"
NO_CORPUS = f"the shared X12 corpus is not at {X12_CORPUS} (set OPENHMO_CORPUS)"

# Corpus files that really violate the implementation guide, with the message that says how.
KNOWN_INVALID = {
    # SE02 (4323) differs from ST02 (4321); the X12 envelope rules require them to be equal.
    # The same response in the badx12 corpus (edi__X279-error-response-...) has 4323 in both
    # and validates.
    "271_005010X279A1__subscriber-health-benefit-check-error.271": (
        r"SE id=4323 does not match ST id=4321"
    ),
}


def corpus_files(subdir: str, pattern: str) -> list:
    files = sorted((X12_CORPUS / subdir).glob(pattern))
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS), id=pattern)]
    return [pytest.param(f, id=f.name) for f in files]


def corpus_file(subdir: str, name: str) -> Path:
    path = X12_CORPUS / subdir / name
    if not path.exists():
        pytest.skip(f"{path} is missing: {NO_CORPUS}")
    return path


ELIGIBILITY_FILES = (
    corpus_files("linuxforhealth", "270_005010X279A1__*.270")
    + corpus_files("linuxforhealth", "271_005010X279A1__*.271")
    + corpus_files("badx12", "edi__X279-*.edi")
)


# ------------------------------------------------------------------ corpus 270/271


@pytest.mark.parametrize("path", ELIGIBILITY_FILES)
def test_eligibility_corpus_validates(path: Path) -> None:
    valid, errors = pyx12_validate(path)
    if path.name in KNOWN_INVALID:
        assert not valid
        assert errors and all(re.search(KNOWN_INVALID[path.name], e) for e in errors), errors
    else:
        assert valid, errors
        assert errors == []


def test_known_invalid_corpus_file_has_only_that_problem(tmp_path: Path) -> None:
    name = "271_005010X279A1__subscriber-health-benefit-check-error.271"
    fixed = tmp_path / name
    text = corpus_file("linuxforhealth", name).read_text()
    fixed.write_text(text.replace("SE*8*4323", "SE*8*4321"))
    assert pyx12_validate(fixed) == (True, [])


def test_base_guide_label_uses_the_a1_maps() -> None:
    # The badx12 responses are labelled 005010X279 (the guide before its addenda).
    path = corpus_file(
        "badx12",
        "edi__X279-response-to-generic-request-by-clinic-for-patient-(subscriber)-eligibility.edi",
    )
    assert "*X*005010X279~" in path.read_text()
    assert pyx12_validate(path) == (True, [])


# ------------------------------------------------------------------------- 278


@pytest.mark.parametrize(
    "name, purpose",
    [
        ("278_request.x12", "request"),
        ("278_response_approved.x12", "response"),
        ("278_response_denied.x12", "response"),
    ],
)
def test_278_fixtures_validate(name: str, purpose: str) -> None:
    path = DATA / name
    assert x12_validate.x217_purposes(path) == {purpose}
    assert pyx12_validate(path) == (True, [])


def test_278_decisions() -> None:
    def hcr(name: str) -> list[list[str]]:
        return [s.split("*") for s in segments(DATA / name) if s.startswith("HCR*")]

    assert [s[1] for s in hcr("278_response_approved.x12")] == ["A1", "A1"]
    assert all(s[2] for s in hcr("278_response_approved.x12"))  # certification number
    denied = hcr("278_response_denied.x12")
    assert [s[1] for s in denied] == ["A3", "A3"]
    assert all(s[3] for s in denied)  # HCR03 review decision reason code


def test_278_response_needs_the_response_map() -> None:
    # pyx12 would take the request map (first in maps.xml); it has no HCR segment.
    valid, errors = run_pyx12(DATA / "278_response_approved.x12", map_path())
    assert not valid
    assert any("Segment HCR*A1 not found" in e for e in errors), errors


def test_278_request_with_a_decision_is_rejected(tmp_path: Path) -> None:
    path = mutate(
        DATA / "278_request.x12",
        tmp_path,
        lambda segs: insert_after(segs, "UM*HS*I*2", "HCR*A1*AUTH0001"),
    )
    valid, errors = pyx12_validate(path)
    assert not valid
    assert any("Segment HCR*A1 not found" in e for e in errors), errors


def test_278_file_mixing_requests_and_responses(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.x12"
    mixed.write_text(
        (DATA / "278_request.x12").read_text() + (DATA / "278_response_denied.x12").read_text()
    )
    valid, errors = pyx12_validate(mixed)
    assert not valid
    assert "mixes 005010X217 278 requests and responses" in errors[0]


# ------------------------------------------------------------- broken variants


def segments(path: Path) -> list[str]:
    text = path.read_text()
    terminator = text[text.index("ISA") + 105]
    return [s.strip() for s in text.split(terminator) if s.strip()]


def fix_count(segs: list[str]) -> list[str]:
    """Set SE01 to the segment count from ST to SE."""
    start = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    end = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    fields = segs[end].split("*")
    fields[1] = str(end - start + 1)
    return [*segs[:end], "*".join(fields), *segs[end + 1 :]]


def drop(prefix: str) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        index = next(i for i, s in enumerate(segs) if s.startswith(prefix))
        return fix_count(segs[:index] + segs[index + 1 :])

    return edit


def change(old: str, new: str) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        index = next(i for i, s in enumerate(segs) if s.startswith(old))
        return [*segs[:index], new + segs[index][len(old) :], *segs[index + 1 :]]

    return edit


def wrong_count(segs: list[str]) -> list[str]:
    end = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    fields = segs[end].split("*")
    fields[1] = str(int(fields[1]) + 1)
    return [*segs[:end], "*".join(fields), *segs[end + 1 :]]


def insert_after(segs: list[str], prefix: str, new: str) -> list[str]:
    index = next(i for i, s in enumerate(segs) if s.startswith(prefix))
    return fix_count([*segs[: index + 1], new, *segs[index + 1 :]])


def mutate(src: Path, tmp_path: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    dst = tmp_path / f"broken-{src.name}"
    dst.write_text("~\n".join(edit(segments(src))) + "~\n")
    return dst


REQUEST = ("data", "278_request.x12")
APPROVED = ("data", "278_response_approved.x12")
DENIED = ("data", "278_response_denied.x12")
REQUEST_270 = ("linuxforhealth", "270_005010X279A1__dependent-health-benefit-check.270")
RESPONSE_271 = (
    "badx12",
    "edi__X279-response-to-generic-request-by-physician-for-patient-(dependent)-eligibility.edi",
)

BROKEN = [
    # a mandatory segment or loop removed
    ("278-no-UM", REQUEST, drop("UM*HS*I*2"),
     r'Mandatory segment "Health Care Services Review Information" \(UM\) missing'),
    ("278-no-subscriber-name", REQUEST, drop("NM1*IL"),
     r'Mandatory loop "Subscriber Name" \(2010C\) missing'),
    ("278-response-no-UMO-name", APPROVED, drop("NM1*X3"),
     r'Mandatory loop "Utilization Management Organization \(UMO\) Name" \(2010A\) missing'),
    ("270-no-payer-name", REQUEST_270, drop("NM1*PR"),
     r'Mandatory loop "Information Source Name" \(2100A\) missing'),
    ("271-no-subscriber-name", RESPONSE_271, drop("NM1*IL"),
     r'Mandatory loop "Subscriber Name" \(2100C\) missing'),
    ("271-LS-without-LE", RESPONSE_271, drop("LE*2120"),
     r'Mandatory segment "Loop Trailer" \(LE\) missing'),
    # a bad code value
    ("278-bad-UM02", REQUEST, change("UM*HS*I*2", "UM*HS*X*2"),
     r"\(X\) is not a valid code for Certification Type Code \(UM02\)"),
    ("278-bad-HCR04", APPROVED, change("HCR*A1*AUTH0001", "HCR*A1*AUTH0001**X"),
     r"\(X\) is not a valid code for Second Surgical Opinion Indicator \(HCR04\)"),
    # pyx12 matches a segment to the map by its first element when that is a required
    # code (a qualifier), so a bad code there reads "segment not found"
    ("278-bad-HCR01", APPROVED, change("HCR*A1", "HCR*A9"), r"Segment HCR\*A9 not found"),
    ("278-bad-UM01", REQUEST, change("UM*HS*I*2", "UM*XX*I*2"), r"Segment UM\*XX not found"),
    ("278-bad-HL03", DENIED, change("HL*5*4*SS", "HL*5*4*XX"),
     r"Segment HL\*5\*4\*XX\*0 not found"),
    ("270-bad-BHT02", REQUEST_270, change("BHT*0022*13", "BHT*0022*99"),
     r"\(99\) is not a valid code for Transaction Set Purpose Code \(BHT02\)"),
    ("271-bad-EB01", RESPONSE_271, change("EB*L", "EB*Z"), r"Segment EB\*Z not found"),
    ("271-bad-EB04", RESPONSE_271, change("EB*B**1>33>35>47>86>88>98>AL>MH>UC*HM",
                                          "EB*B**1>33>35>47>86>88>98>AL>MH>UC*ZZ"),
     r"\(ZZ\) is not a valid code for Insurance Type Code \(EB04\)"),
    ("271-bad-INS02", RESPONSE_271, change("INS*N*19", "INS*N*99"),
     r"\(99\) is not a valid code for Individual Relationship Code \(INS02\)"),
    ("271-bad-repeated-EB03", RESPONSE_271, change("EB*1**1>33", "EB*1**1>QQ"),
     r'"Service Type Code" with a value of \(1>QQ>35[^)]*\) failed to match'),
    # a wrong SE count
    ("278-request-SE-count", REQUEST, wrong_count,
     r"SE count of 23 for SE02=0001 is wrong. I count 22"),
    ("278-denied-SE-count", DENIED, wrong_count, r"SE count of \d+ for SE02=0001 is wrong"),
    ("270-SE-count", REQUEST_270, wrong_count, r"SE count of 16 for SE02=1234 is wrong"),
    ("271-SE-count", RESPONSE_271, wrong_count, r"SE count of 29 for SE02=4322 is wrong"),
]  # fmt: skip


@pytest.mark.parametrize(
    "source, edit, expected",
    [pytest.param(source, edit, expected, id=name) for name, source, edit, expected in BROKEN],
)
def test_broken_variant_is_rejected(
    source: tuple[str, str],
    edit: Callable[[list[str]], list[str]],
    expected: str,
    tmp_path: Path,
) -> None:
    where, name = source
    src = DATA / name if where == "data" else corpus_file(where, name)
    assert pyx12_validate(src) == (True, [])
    valid, errors = pyx12_validate(mutate(src, tmp_path, edit))
    assert not valid
    assert any(re.search(expected, e) for e in errors), errors


# -------------------------------------------------------------- stock transactions

STOCK = [
    ("data", "999_005010X231A1.x12"),  # 999 005010X231A1
    ("data", "277_005010X214.x12"),  # 277CA 005010X214
    ("pyx12", "835_mult_loops.txt"),  # 835 005010X221A1
    ("pyx12", "834_deident_family.txt"),  # 834 005010X220A1
    ("pyx12", "834_ls_le_ls_5010.999.txt"),  # 999 005010X231
    ("badx12", "edi__X222-ambulance.edi"),  # 837P 005010X222A1
    ("badx12", "edi__X221-era-sample.edi"),  # 835 005010X221A1
]


@pytest.mark.parametrize("where, name", STOCK, ids=[name for _, name in STOCK])
def test_stock_transactions_as_with_pyx12_defaults(where: str, name: str) -> None:
    path = DATA / name if where == "data" else corpus_file(where, name)
    result = pyx12_validate(path)
    assert result == run_pyx12(path, None)
    assert result == (True, [])


def test_stock_transaction_errors_as_with_pyx12_defaults() -> None:
    path = corpus_file("badx12", "edi__X222-oxygen.edi")
    result = pyx12_validate(path)
    assert not result[0]
    assert result == run_pyx12(path, None)


def test_pyx12_package_maps_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def digest() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(STOCK_MAP_DIR.iterdir())
            if p.is_file()
        }

    before = digest()
    monkeypatch.setattr(x12_validate, "_map_dirs", {})  # build the map directories afresh
    for response in (False, True):
        built = map_path(response)
        assert (built / "maps.xml").is_file() and not (built / "maps.xml").is_symlink()
        assert not (built / "dataele.xml").is_symlink()
    assert pyx12_validate(DATA / "278_response_denied.x12") == (True, [])
    assert digest() == before


# ---------------------------------------------------------------------- the maps


def map_entries(path: Path) -> list[tuple[str | None, ...]]:
    return [
        (v.get("icvn"), m.get("vriic"), m.get("fic"), m.get("tspc"), m.text)
        for v in ET.parse(path).getroot().iter("version")
        for m in v.iter("map")
    ]


def test_maps_index_keeps_every_stock_entry() -> None:
    stock = map_entries(STOCK_MAP_DIR / "maps.xml")
    ours = map_entries(MAPS_DIR / "maps.xml")
    assert [e for e in ours if e in stock] == stock
    added = [e for e in ours if e not in stock]
    assert added == [
        ("00501", "005010X279A1", "HS", None, "270.5010.X279.A1.xml"),
        ("00501", "005010X279A1", "HB", None, "271.5010.X279.A1.xml"),
        ("00501", "005010X279", "HS", None, "270.5010.X279.A1.xml"),
        ("00501", "005010X279", "HB", None, "271.5010.X279.A1.xml"),
        ("00501", "005010X217", "HI", "13", "278.5010.X217.request.xml"),
        ("00501", "005010X217", "HI", "11", "278.5010.X217.response.xml"),
    ]
    for *_, filename in added:
        assert (MAPS_DIR / filename).is_file()


def test_response_map_directory_lists_the_response_map_first() -> None:
    entries = [e for e in map_entries(map_path(True) / "maps.xml") if e[1] == "005010X217"]
    assert [e[3] for e in entries] == ["11", "13"]
    entries = [e for e in map_entries(map_path(False) / "maps.xml") if e[1] == "005010X217"]
    assert [e[3] for e in entries] == ["13", "11"]


NEW_MAPS = sorted(MAPS_DIR.glob("27*.xml"))


@pytest.mark.parametrize("path", NEW_MAPS, ids=[p.name for p in NEW_MAPS])
def test_map_data_elements_are_defined(path: Path) -> None:
    defined = {
        e.get("ele_num")
        for source in (STOCK_MAP_DIR / "dataele.xml", MAPS_DIR / "dataele.extra.xml")
        for e in ET.parse(source).getroot().iter("data_ele")
    }
    used = {
        node.get("data_ele")
        for node in ET.parse(path).getroot().iter()
        if node.tag in ("element", "composite")
    }
    composites = {u for u in used if u and u.startswith("C")}
    assert used - composites <= defined


def test_maps_match_their_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("make_maps", MAPS_DIR / "make_maps.py")
    assert spec and spec.loader
    make_maps = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_maps", make_maps)  # dataclasses look it up
    spec.loader.exec_module(make_maps)
    for filename, xid, name, build in make_maps.MAPS:
        make_maps.write_map(tmp_path / filename, xid, name, build())
        assert (tmp_path / filename).read_text() == (MAPS_DIR / filename).read_text(), (
            f"{filename} differs from make_maps.py: run .venv/bin/python "
            "tests/x12_maps/make_maps.py"
        )

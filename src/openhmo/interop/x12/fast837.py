"""The fast path of 837 intake: whole transaction sets checked and mapped as columns.

`read_file_fast` reads a file as `envelope.read_file` does and gives the same result,
but an 837 set's body is not walked segment by segment: its segments are gathered as
they stream by and, at the set's SE, checked and mapped in one go with Polars (every
element rule of `claims837.RULES` as a column expression, the loops as forward-filled
markers, the hierarchy as joins). Only a set found clean that way is mapped there; a
set with anything the fast path does not vouch for (a bad element, a loop out of place,
a segment in a loop it does not expect) is handed, segment by segment, to the precise
reader (`claims837.ClaimsReader`), which says what and where. So the fast path may be
stricter than the precise one but never more lenient: every set it accepts, the
precise reader accepts with the same claims (tests/test_x12_fast.py checks this on the
corpus, on generated files and on fuzzed ones).

The envelopes themselves (ISA, GS, ST, SE, GE, IEA) always go through the one envelope
reader, so their checks are written once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import polars as pl

from openhmo.interop.x12.claims837 import (
    _DX_ICD9,
    _DX_ICD10,
    _HI_OTHER,
    KNOWN,
    RULES,
    Claim837,
    ClaimsReader,
    Header837,
    Line837,
    Person,
    _parse_date,
)
from openhmo.interop.x12.elements import Rule
from openhmo.interop.x12.envelope import FileRead, HandlerFactory, TransactionSet, _Reader
from openhmo.interop.x12.syntax import CHUNK, X12FileError, _open, blocks, make_segment

_ENVELOPE = frozenset({"IS", "GS", "ST", "SE", "GE", "IE", "TA"})
_CHARSET = r"^[A-Za-z0-9 !\"&'()*+,\-./:;?=%@\[\]_{}\\|<>~#$]*$"
_S = pl.Utf8


def _v_ok(v: pl.Expr, r: Rule) -> pl.Expr:
    """True where a (non-empty) value certainly passes `elements._value` for rule `r`."""
    kind = r.kind
    if kind == "ID" and r.codes is not None:
        return v.is_in(sorted(r.codes)) & v.str.contains(_CHARSET)
    if kind in ("ID", "AN"):
        return v.str.len_chars().is_between(r.min, r.max) & v.str.contains(_CHARSET)
    digits = v.str.replace(r"^-", "").str.replace_all(r"\.", "").str.len_chars()
    if kind == "R":
        shape = v.str.contains(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
        return shape & digits.is_between(r.min, r.max)
    if kind in ("N0", "N2"):
        return v.str.contains(r"^-?[0-9]+$") & digits.is_between(r.min, r.max)
    if kind == "DT":
        day = v.str.strptime(pl.Date, "%Y%m%d", strict=False)
        return (
            v.str.contains(r"^[0-9]{8}$")
            & day.is_not_null()
            & (v.str.slice(0, 4) != "0000")
            & v.str.len_chars().is_between(r.min, r.max)
        )
    if kind == "TM":
        hh = v.str.slice(0, 2).cast(pl.Int32, strict=False)
        mm = v.str.slice(2, 2).cast(pl.Int32, strict=False)
        ss = v.str.slice(4, 2).cast(pl.Int32, strict=False)
        length = v.str.len_chars()
        return (
            v.str.contains(r"^(?:[0-9]{4}|[0-9]{6,8})$")
            & (hh < 24)
            & (mm < 60)
            & ((length < 6) | (ss < 60))
            & length.is_between(r.min, r.max)
        )
    return pl.lit(False)


def _rule_ok(v: pl.Expr, r: Rule, component: str) -> pl.Expr:
    empty = v.is_null() | (v == "")
    if r.usage == "X":
        return empty
    if r.kind == "C":
        parts = v.str.split(component)
        ok = parts.list.len() <= len(r.components)
        for c, cr in enumerate(r.components):
            ok = ok & _rule_ok(parts.list.get(c, null_on_oob=True), cr, component)
        filled = ok
    else:
        filled = _v_ok(v, r)
    if r.usage == "M":
        return ~empty & filled.fill_null(False)
    return empty | filled.fill_null(False)


def _element_checks(parts: dict, component: str) -> list[pl.LazyFrame]:
    """One query per segment kind: do all its segments pass their rules (see `_v_ok`)?"""
    queries = []
    for sid, rules in RULES.items():
        rows = parts.get((sid,))
        if rows is None:
            continue
        checks = [pl.col("el").list.len() - 1 <= len(rules)]
        for n, r in enumerate(rules, start=1):
            checks.append(_rule_ok(pl.col("el").list.get(n, null_on_oob=True), r, component))
        queries.append(rows.lazy().select(pl.all_horizontal(checks).all().alias("ok")))
    return queries


_FLAT = 9  # elements 1 to 9 of every segment are kept as columns of their own


def _get(n: int) -> pl.Expr:
    return pl.col(f"e{n}") if n <= _FLAT else pl.col("el").list.get(n, null_on_oob=True)


def _or_none(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(None).otherwise(expr)


class _Unclean(Exception):
    """The fast path does not vouch for this set: the precise reader takes it."""


def _need(condition: bool) -> None:
    if not condition:
        raise _Unclean


def _columnar(texts: list[str], kind: str, element: str, component: str, first_line: int):
    """(header, claims) of a clean 837 set body, or raise `_Unclean`."""
    raw = pl.col("raw")
    stripped = raw.str.strip_chars_start(" \t\r\n")
    newlines = raw.str.count_matches("\n")
    lead = raw.str.len_chars() - stripped.str.len_chars()
    institutional = kind == "institutional"
    sid, i = pl.col("sid"), pl.col("i")
    e1, e2, e3, e9 = _get(1), _get(2), _get(3), _get(9)
    frame = (
        pl.DataFrame({"raw": texts}, schema={"raw": _S})
        .lazy()
        .with_row_index("i")
        .with_columns(
            el=stripped.str.strip_chars_end("\r\n").str.split(element),
            empty=stripped.str.strip_chars_end("\r\n") == "",
            # The line each segment starts on, as the precise reader counts it.
            line_at=first_line
            + newlines.cum_sum()
            - newlines
            + raw.str.slice(0, lead).str.count_matches("\n"),
        )
        .drop("raw")
        .with_columns(
            sid=pl.col("el").list.first(),
            **{f"e{n}": pl.col("el").list.get(n, null_on_oob=True) for n in range(1, _FLAT + 1)},
        )
        # Where each segment stands: its HL, its claim (CLM), its service line (LX).
        .with_columns(
            hl_row=pl.when(sid == "HL").then(i).forward_fill(),
            claim_row=pl.when(sid == "CLM").then(i).when(sid == "HL").then(-1).forward_fill(),
        )
        .with_columns(claim_row=pl.when(pl.col("claim_row") >= 0).then(pl.col("claim_row")))
        .with_columns(
            line_row=pl.when(sid == "LX")
            .then(i)
            .when(sid.is_in(["CLM", "HL"]) | ((sid == "SBR") & pl.col("claim_row").is_not_null()))
            .then(-1)
            .forward_fill()
        )
        .with_columns(line_row=pl.when(pl.col("line_row") >= 0).then(pl.col("line_row")))
        .collect()
    )
    sids = frame["sid"]
    _need(bool(sids.is_in(sorted(KNOWN)).all()) and not frame["empty"].any())
    _need(frame.height > 0 and sids[0] == "BHT" and int((sids == "BHT").sum()) == 1)
    in_claim = pl.col("claim_row").is_not_null()
    in_line = pl.col("line_row").is_not_null()
    # The loop each segment is read in, as the precise reader's `loop` before it.
    base = (
        pl.when(sid == "HL")
        .then(pl.lit("HL"))
        .when(sid == "CLM")
        .then(pl.lit("2300"))
        .when((sid == "SBR") & in_claim)
        .then(pl.lit("2320"))
        .when(sid == "LX")
        .then(pl.lit("2400"))
        .when((sid == "LIN") & in_line)
        .then(pl.lit("2410"))
        .when((sid == "SVD") & in_line)
        .then(pl.lit("2430"))
    )
    b = pl.col("base")
    nm1_zone = (
        pl.when(b == "header")
        .then(pl.when(e1 == "41").then(pl.lit("1000A")).when(e1 == "40").then(pl.lit("1000B")))
        .when(~in_claim)
        .then(
            pl.when(e1 == "85")
            .then(pl.lit("2010AA"))
            .when(e1 == "IL")
            .then(pl.lit("2010BA"))
            .when(e1 == "PR")
            .then(pl.lit("2010BB"))
            .when(e1 == "QC")
            .then(pl.lit("2010CA"))
            .otherwise(pl.lit("2010A"))
        )
        .when(b == "2320")
        .then(pl.lit("2330"))
        .when(~in_line)
        .then(pl.lit("2310"))
        .otherwise(pl.lit("2420"))
    )
    setter = pl.when(sid == "NM1").then(nm1_zone).when(base.is_not_null()).then(base)
    # The HL hierarchy: levels 20 > 22 > 23, each naming an earlier parent of the level above.
    hls = frame.filter(sid == "HL").select(
        pl.col("i").alias("hl_row"), e1.alias("hid"), e2.alias("parent"), e3.alias("level")
    )
    _need(hls.height > 0 and hls["hid"].n_unique() == hls.height)
    first_hl = int(hls["hl_row"][0])
    parents = hls.select(
        pl.col("hid").alias("parent"),
        pl.col("level").alias("parent_level"),
        pl.col("hl_row").alias("parent_row"),
    )
    hls = hls.join(parents, on="parent", how="left")
    expected = pl.col("level").replace_strict(
        {"20": None, "22": "20", "23": "22"}, default=None, return_dtype=_S
    )
    _need(
        hls.filter(
            (pl.col("level") != "20")
            & (
                pl.col("parent_level").is_null()
                | (pl.col("parent_level") != expected)
                | (pl.col("parent_row") >= pl.col("hl_row"))
            )
        ).is_empty()
    )
    frame = (
        frame.lazy()
        .with_columns(base=base.forward_fill().fill_null("header"))
        .with_columns(zone=setter.forward_fill().shift(1).fill_null("header"))
        .join(hls.lazy().select("hl_row", "level"), on="hl_row", how="left")
        .collect()
    )
    parts = frame.partition_by("sid", as_dict=True)
    lazy = frame.lazy()
    level, zone = pl.col("level"), pl.col("zone")
    header_zone = i < first_hl
    # Segments the fast path takes only where they belong; elsewhere the precise reader.
    out_of_place = (
        ((sid == "CLM") & ~level.is_in(["22", "23"]))
        | ((sid == "LX") & ~in_claim)
        | (
            (sid == "NM1")
            & ~in_claim
            & ~header_zone
            & ~(
                ((e1 == "85") & (level == "20"))
                | ((e1 == "IL") & (level == "22"))
                | ((e1 == "PR") & (level == "22"))
                | ((e1 == "QC") & (level == "23"))
                | ~e1.is_in(["85", "IL", "PR", "QC"])
            )
        )
        | ((sid == "NM1") & (e1 == "IL") & ~in_claim & ~header_zone & (e9.is_null() | (e9 == "")))
        | ((sid == "PRV") & ~in_claim & (level != "20"))
        | ((sid == "REF") & ~in_claim & (e1 == "EI") & (zone == "2010AA") & (level != "20"))
        | ((sid == "SBR") & ~in_claim & (level != "22"))
        | ((sid == "PAT") & ~in_claim & (level != "23") & (level != "22"))
        | (
            (sid == "DMG")
            & ~in_claim
            & ~(((zone == "2010BA") & (level == "22")) | ((zone == "2010CA") & (level == "23")))
        )
        | (sid.is_in(["SV1", "SV2"]) & (zone != "2400"))
        | ((sid == "SV1") & pl.lit(institutional))
        | ((sid == "SV2") & pl.lit(not institutional))
        | ((sid == "DTP") & in_line & (e1 == "472") & (zone != "2400"))
        | ((sid == "DTP") & in_claim & ~in_line & (e1 == "472"))
        | (
            (sid == "DTP")
            & in_claim
            & ~in_line
            & (e1 == "434")
            & ~zone.is_in(["2320", "2330", "2430"])
            & (e2 != "RD8")
        )
        | ((sid == "REF") & in_line & e1.is_in(["9F", "G1", "F8"]))
        | (
            (sid == "AMT")
            & in_claim
            & (
                ((zone == "2300") & ~e1.is_in(["F3", "F5"]))
                | ((zone == "2320") & ~e1.is_in(["D", "A8", "EAF"]))
                | ((zone == "2400") & ~e1.is_in(["T", "F4", "GT", "N8"]))
            )
        )
        | (
            (sid == "N4")
            & (zone == "2010AA")
            & pl.lit(institutional)
            & ~e3.str.contains(r"^[0-9]{9}$").fill_null(False)
        )
        | ((sid == "HI") & in_claim & in_line)
    )
    queries = _element_checks(parts, component)
    queries.append(lazy.select((~out_of_place).all().alias("ok")))
    # One of each HL-level segment per HL: the precise reader's "the last one wins" and
    # "a DMG names the person read just before it" agree only then.
    counted = [("NM1", "85"), ("NM1", "IL"), ("NM1", "PR"), ("NM1", "QC"), ("REF", "EI")]
    counted += [("SBR", None), ("PAT", None), ("PRV", None), ("DMG", None)]
    once = (
        lazy.filter(~in_claim & ~header_zone)
        .group_by("hl_row")
        .agg(
            [
                ((sid == s) & (e1 == q if q else pl.lit(True))).sum().alias(f"{s}{q or ''}")
                for s, q in counted
            ]
        )
    )
    queries.append(once.select(pl.all_horizontal(pl.exclude("hl_row") <= 1).all().alias("ok")))
    # Each service line has one SV1/SV2 and at most one DTP*472, with readable dates.
    queries.append(
        lazy.filter(in_line)
        .group_by("line_row")
        .agg(sv=sid.is_in(["SV1", "SV2"]).sum(), dtp=((sid == "DTP") & (e1 == "472")).sum())
        .select(((pl.col("sv") == 1) & (pl.col("dtp") <= 1)).all().alias("ok"))
    )
    dates = e3.str.split("-")
    start_day = dates.list.first()
    end_day = (
        pl.when(e3.str.contains("-")).then(dates.list.get(1, null_on_oob=True)).otherwise(start_day)
    )

    def day_ok(day: pl.Expr) -> pl.Expr:
        return (
            day.str.contains(r"^[0-9]{8}$")
            & day.str.strptime(pl.Date, "%Y%m%d", strict=False).is_not_null()
            & (day.str.slice(0, 4) != "0000")
        ).fill_null(False)

    queries.append(
        lazy.filter(in_line & (sid == "DTP") & (e1 == "472")).select(
            (day_ok(start_day) & day_ok(end_day) & (e3.str.count_matches("-") <= 1))
            .all()
            .alias("ok")
        )
    )
    # Loop 2320 has its 2330A (NM1*IL) and 2330B (NM1*PR).
    queries.append(
        lazy.with_columns(
            payer_loop=pl.when((sid == "SBR") & in_claim)
            .then(i)
            .when(sid.is_in(["LX", "CLM", "HL"]))
            .then(-1)
            .forward_fill()
        )
        .filter(pl.col("payer_loop") >= 0)
        .group_by("payer_loop")
        .agg(il=((sid == "NM1") & (e1 == "IL")).any(), pr=((sid == "NM1") & (e1 == "PR")).any())
        .select((pl.col("il") & pl.col("pr")).all().alias("ok"))
    )
    # LX numbers run 1, 2, 3 ... within each claim.
    queries.append(
        lazy.filter(sid == "LX")
        .with_columns(n=pl.int_range(1, pl.len() + 1).over("claim_row"))
        .select((e1.cast(pl.Int64, strict=False) == pl.col("n")).all().alias("ok"))
    )
    # Diagnoses: HI of the claim (before its lines), ICD-10 or ICD-9, principal first.
    dx_map = {**dict.fromkeys(_DX_ICD10, "ABK"), **dict.fromkeys(_DX_ICD9, "BK")}
    principal = sorted(k for k, v in {**_DX_ICD10, **_DX_ICD9}.items() if v)
    hi = (
        lazy.filter((sid == "HI") & in_claim)
        .select("claim_row", pl.col("el").list.slice(1).alias("part"))
        .explode("part")
        .with_columns(
            qualifier=pl.col("part").str.split(component).list.first(),
            code=pl.col("part").str.split(component).list.get(1, null_on_oob=True).fill_null(""),
        )
    )
    queries.append(
        hi.select(pl.col("qualifier").is_in(sorted(set(dx_map) | _HI_OTHER)).all().alias("ok"))
    )
    dx = hi.filter(pl.col("qualifier").is_in(sorted(dx_map))).with_columns(
        code_set=pl.col("qualifier").replace_strict(dx_map, return_dtype=_S),
        is_principal=pl.col("qualifier").is_in(principal),
    )
    queries.append(
        dx.group_by("claim_row")
        .agg(
            sets=pl.col("code_set").n_unique(),
            first=pl.col("is_principal").first(),
            principals=pl.col("is_principal").sum(),
        )
        .select(
            ((pl.col("sets") == 1) & pl.col("first") & (pl.col("principals") == 1))
            .all()
            .alias("ok")
        )
    )
    # Every claim has a line and a diagnosis.
    claim_rows = lazy.filter(sid == "CLM").select(pl.col("i").alias("claim_row"))
    queries.append(
        claim_rows.join(dx.select("claim_row").unique(), on="claim_row", how="anti").select(
            (pl.len() == 0).alias("ok")
        )
    )
    queries.append(
        claim_rows.join(
            lazy.filter(sid == "LX").select("claim_row").unique(), on="claim_row", how="anti"
        ).select((pl.len() == 0).alias("ok"))
    )
    verdicts = pl.collect_all(queries)
    _need(all(v.height == 0 or bool(v["ok"][0]) for v in verdicts))
    return _map(frame, hls, dx, kind, component, first_hl)


def _last(lazy: pl.LazyFrame, condition: pl.Expr, key: str, **values: pl.Expr) -> pl.LazyFrame:
    """The last value of each column among the rows matching `condition`, per `key`."""
    return (
        lazy.filter(condition)
        .group_by(key, maintain_order=True)
        .agg(**{name: expr.last() for name, expr in values.items()})
    )


def _map(
    frame: pl.DataFrame,
    hls: pl.DataFrame,
    dx: pl.LazyFrame,
    kind: str,
    component: str,
    first_hl: int,
):
    sid, zone = pl.col("sid"), pl.col("zone")
    e1, e2, e3, e4, e8, e9 = _get(1), _get(2), _get(3), _get(4), _get(8), _get(9)
    in_claim = pl.col("claim_row").is_not_null()
    in_line = pl.col("line_row").is_not_null()
    lazy = frame.lazy()
    own = ~in_claim
    # Per HL: what its own segments say (the fast path allows each once, in its own level).
    per_hl = [
        _last(
            lazy,
            own & (sid == "NM1") & (e1 == "85"),
            "hl_row",
            billing_npi=pl.when(e8 == "XX").then(_or_none(e9)),
            billing_name=e3.fill_null(""),
        ),
        _last(
            lazy,
            own & (sid == "REF") & (e1 == "EI") & (zone == "2010AA"),
            "hl_row",
            billing_tax_id=e2,
        ),
        _last(lazy, own & (sid == "PRV"), "hl_row", billing_taxonomy=_or_none(e3)),
        _last(
            lazy,
            own & (sid == "NM1") & (e1 == "IL"),
            "hl_row",
            subscriber_id=_or_none(e9),
            sub_last=e3.fill_null(""),
            sub_first=e4.fill_null(""),
        ),
        _last(lazy, own & (sid == "NM1") & (e1 == "PR"), "hl_row", payer_id=_or_none(e9)),
        _last(
            lazy,
            own & (sid == "NM1") & (e1 == "QC"),
            "hl_row",
            pat_last=e3.fill_null(""),
            pat_first=e4.fill_null(""),
        ),
        _last(lazy, own & (sid == "SBR"), "hl_row", sbr_rel=_or_none(e2)),
        _last(
            lazy, own & (sid == "PAT") & (pl.col("level") == "23"), "hl_row", pat_rel=_or_none(e1)
        ),
        _last(
            lazy,
            own & (sid == "DMG") & (zone == "2010BA"),
            "hl_row",
            sub_born=e2,
            sub_sex=_or_none(e3),
        ),
        _last(
            lazy,
            own & (sid == "DMG") & (zone == "2010CA"),
            "hl_row",
            pat_born=e2,
            pat_sex=_or_none(e3),
        ),
    ]
    levels = hls.lazy().select("hl_row", "level", "parent_row")
    for part in per_hl:
        first = part.collect_schema().names()[1]
        levels = levels.join(
            part.with_columns(pl.lit(True).alias(f"has_{first}")), on="hl_row", how="left"
        )
    # Per claim: the values of its own loops.
    claim_level = in_claim & ~in_line & ~zone.is_in(["2320", "2330", "2430"])
    render = "71" if kind == "institutional" else "82"
    per_claim = [
        _last(lazy, claim_level & (sid == "REF") & (e1 == "9F"), "claim_row", referral=e2),
        _last(lazy, claim_level & (sid == "REF") & (e1 == "G1"), "claim_row", prior_auth=e2),
        _last(lazy, claim_level & (sid == "REF") & (e1 == "F8"), "claim_row", original=e2),
        _last(
            lazy,
            in_claim
            & ~in_line
            & ~zone.is_in(["2320", "2330"])
            & (sid == "NM1")
            & (e1 == render)
            & (e8 == "XX"),
            "claim_row",
            rendering=_or_none(e9),
        ),
        _last(
            lazy,
            in_claim
            & ~in_line
            & ~zone.is_in(["2320", "2330"])
            & (sid == "NM1")
            & e1.is_in(["DN", "P3"])
            & (e8 == "XX"),
            "claim_row",
            referring=_or_none(e9),
        ),
        _last(lazy, claim_level & (sid == "DTP") & (e1 == "434"), "claim_row", statement=e3),
        _last(lazy, in_claim & (sid == "CL1"), "claim_row", admission=_or_none(e1)),
        _last(lazy, in_claim & (sid == "CL1") & (e1 == "1"), "claim_row", cl1_emergency=e1),
        dx.group_by("claim_row", maintain_order=True).agg(
            pl.col("code").alias("codes"), pl.col("code_set").first()
        ),
    ]
    claims = lazy.filter(sid == "CLM").select(
        pl.col("i").alias("claim_row"), "hl_row", "el", "line_at"
    )
    for part in per_claim:
        claims = claims.join(part, on="claim_row", how="left")
    # Per line: the service, its dates, its rendering provider, control number and drug.
    if kind == "institutional":
        values = [
            e1.alias("revenue"),
            e2.alias("proc"),
            e3.alias("charge"),
            _get(5).alias("units"),
            pl.lit(None, _S).alias("pos"),
            pl.lit(False).alias("emergency"),
        ]
    else:
        values = [
            pl.lit(None, _S).alias("revenue"),
            e1.alias("proc"),
            e2.alias("charge"),
            e4.alias("units"),
            _or_none(_get(5)).alias("pos"),
            (_get(9) == "Y").fill_null(False).alias("emergency"),
        ]
    lines = lazy.filter(sid.is_in(["SV1", "SV2"])).select("claim_row", "line_row", *values)
    for part in (
        _last(
            lazy,
            in_line & (sid == "DTP") & (e1 == "472"),
            "line_row",
            start=e3.str.split("-").list.first(),
            end=e3.str.split("-").list.last(),
        ),
        _last(
            lazy,
            in_line & (sid == "NM1") & (e1 == "82") & (e8 == "XX"),
            "line_row",
            npi=_or_none(e9),
        ),
        _last(
            lazy,
            in_line & (sid == "REF") & (e1 == "6R") & ~zone.is_in(["2320", "2330", "2430"]),
            "line_row",
            control=e2,
        ),
        _last(lazy, in_line & (sid == "LIN") & (e2 == "N4"), "line_row", ndc=e3),
    ):
        lines = lines.join(part, on="line_row", how="left")
    header_rows = lazy.filter(
        (sid == "NM1") & (pl.col("i") < first_hl) & e1.is_in(["41", "40"])
    ).select("el")
    levels, claims, lines, header_rows = pl.collect_all(
        [levels, claims.sort("claim_row"), lines.sort("line_row"), header_rows]
    )
    header = Header837()
    bht = frame["el"][0].to_list()
    header.purpose = bht[2] if len(bht) > 2 else ""
    header.reference = bht[3] if len(bht) > 3 else ""
    header.created = bht[4] if len(bht) > 4 else ""
    for el in header_rows["el"].to_list():
        name, ident = (el[3] if len(el) > 3 else ""), (el[9] if len(el) > 9 else "")
        if el[1] == "41":
            header.submitter_name, header.submitter_id = name, ident
        else:
            header.receiver_name, header.receiver_id = name, ident
    by_row = {r["hl_row"]: r for r in levels.iter_rows(named=True)}
    by_claim: dict[int, list[Line837]] = {}
    columns = [
        "claim_row",
        "revenue",
        "proc",
        "charge",
        "units",
        "pos",
        "emergency",
        "start",
        "end",
        "npi",
        "control",
        "ndc",
    ]
    for (
        claim_row,
        revenue,
        proc,
        charge,
        units,
        pos,
        emergency,
        start,
        end,
        npi,
        control,
        ndc,
    ) in zip(*(lines[c].to_list() for c in columns), strict=True):
        parts = proc.split(component) if proc else []
        items = by_claim.setdefault(claim_row, [])
        items.append(
            Line837(
                number=len(items) + 1,
                procedure_code=parts[1] if len(parts) > 1 else None,
                modifiers=[m for m in parts[2:6] if m],
                revenue_code=revenue,
                charge=charge or "",
                units=units or "1",
                place_of_service=pos,
                emergency=bool(emergency),
                service_date=start,
                service_date_to=end if start is not None else None,
                rendering_npi=npi,
                control_number=control,
                ndc=ndc,
            )
        )
    out: list[Claim837] = []
    names = [
        "claim_row",
        "hl_row",
        "el",
        "line_at",
        "referral",
        "prior_auth",
        "original",
        "rendering",
        "referring",
        "statement",
        "admission",
        "cl1_emergency",
        "codes",
        "code_set",
    ]
    for (
        claim_row,
        hl_row,
        el,
        line_at,
        referral,
        prior_auth,
        original,
        rendering,
        referring,
        period,
        admission,
        cl1_emergency,
        codes,
        code_set,
    ) in zip(*(claims[c].to_list() for c in names), strict=True):
        node = by_row[hl_row]
        up = {node["level"]: node}
        while min(up) != "20" and up[min(up)]["parent_row"] is not None:
            parent = by_row[up[min(up)]["parent_row"]]
            up[parent["level"]] = parent
        bill, sub, mine = up.get("20", {}), up.get("22", {}), up.get("23", {})
        subscriber_person = patient_person = None
        if sub.get("has_subscriber_id"):
            born = _parse_date(sub["sub_born"]) if sub.get("has_sub_born") else None
            subscriber_person = Person(sub["sub_last"], sub["sub_first"], born, sub.get("sub_sex"))
        if node["level"] == "23" and mine.get("has_pat_last"):
            born = _parse_date(mine["pat_born"]) if mine.get("has_pat_born") else None
            patient_person = Person(mine["pat_last"], mine["pat_first"], born, mine.get("pat_sex"))
        relationship = mine.get("pat_rel") if mine.get("has_pat_rel") else sub.get("sbr_rel")
        composite = el[5].split(component) if len(el) > 5 else [""]
        claim_lines = by_claim.get(claim_row, [])
        start, _, end = (period or "").partition("-")
        out.append(
            Claim837(
                kind=kind,
                set_control="",
                position=claim_row + 2,
                ordinal=claim_row + 1,  # within the set; _body adds the segments before it
                line=line_at,
                patient_control_number=el[1] if len(el) > 1 else "",
                total_charge=el[2] if len(el) > 2 else "",
                facility_code=composite[0],
                frequency_code=composite[2] if len(composite) > 2 else "",
                billing_npi=bill.get("billing_npi"),
                billing_name=bill.get("billing_name") or "",
                billing_tax_id=bill.get("billing_tax_id"),
                billing_taxonomy=bill.get("billing_taxonomy"),
                payer_id=sub.get("payer_id"),
                subscriber_id=sub.get("subscriber_id"),
                subscriber=subscriber_person,
                relationship=relationship,
                patient=patient_person,
                diagnosis_qualifier=code_set,
                diagnosis_codes=list(codes or []),
                referral_number=referral,
                prior_auth_number=prior_auth,
                original_claim_number=original,
                rendering_npi=rendering,
                referring_npi=referring,
                statement_from=start if period is not None else None,
                statement_to=(end or start) if period is not None else None,
                admission_type=admission,
                emergency=cl1_emergency is not None or any(ln.emergency for ln in claim_lines),
                lines=claim_lines,
            )
        )
    return header, out


def read_file_fast(
    source: str | Path | IO[bytes],
    handlers: dict[str, HandlerFactory],
    *,
    on_set: Callable[[TransactionSet], None] | None = None,
    name: str | None = None,
    chunk_size: int = CHUNK,
) -> FileRead:
    """`envelope.read_file`, with each 837 set's body checked and mapped in bulk."""
    stream, label, owned = _open(source)
    label = name or label
    reader = _Reader(label, handlers, on_set)
    try:
        _drive(reader, stream, label, chunk_size)
    except X12FileError as exc:
        if reader.interchange is not None:
            reader.interchange.problems.append(("023", exc.reason))
        else:
            reader.read.fatal = X12FileError(
                exc.reason, source=label, line=exc.line, position=exc.position
            )
        if reader.ts is not None:
            reader.close_set(None)
        return reader.read
    finally:
        if owned:
            stream.close()
    if reader.interchange is not None:
        reader.close_interchange(None)
    return reader.read


@functools.cache
def _envelope_pattern(terminator: str, separator: str) -> re.Pattern:
    """Where an envelope segment starts in a block: after a terminator (or at the start)."""
    t, e = re.escape(terminator), re.escape(separator)
    return re.compile(rf"(?:^|{t})([ \t\r\n]*)(?:ISA|GS|ST|SE|GE|IEA|TA1)(?={e}|{t}|$)")


class _Pending:
    """The 837 set being gathered for the fast path: its body so far, and where it began."""

    def __init__(self) -> None:
        self.body: list[str] | None = None
        self.start = (0, 1)  # (segments before it, the line it starts on)


def _drive(reader: _Reader, stream, label: str, chunk_size: int) -> None:
    pending = _Pending()
    d = None
    try:
        for d, block, ordinal, line in blocks(stream, label, chunk_size):
            _block(reader, d, block, ordinal, line, label, pending)
    finally:
        # A set the file left open (cut short, or broken) is read segment by segment, as
        # the precise reader would have read it before whatever stopped the file.
        if pending.body is not None and d is not None:
            body, pending.body = pending.body, None
            _body(reader, body, pending.start, d, label, closed=False)


def _block(
    reader: _Reader, d, block: str, ordinal: int, line: int, label: str, pending: _Pending
) -> None:
    term = d.segment
    cursor = 0

    def take(span: str) -> None:
        """Segments between envelope segments: gathered in bulk, or fed one by one."""
        nonlocal ordinal, line
        parts = span.split(term)
        if pending.body is not None:
            pending.body.extend(parts)
            ordinal += len(parts)
            line += span.count("\n")
            return
        for raw in parts:
            seg, line = make_segment(raw, d.element, ordinal, line, label)
            ordinal += 1
            reader.feed(d, seg)

    for match in _envelope_pattern(term, d.element).finditer(block):
        begin = match.start(1)
        if begin > cursor:
            take(block[cursor : begin - len(term)])
        elif match.start() > cursor:
            take("")  # an empty segment right before this one
        end = block.find(term, begin)
        end = len(block) if end < 0 else end
        seg, after = make_segment(block[begin:end], d.element, ordinal, line, label)
        if pending.body is not None:
            body, pending.body = pending.body, None
            _body(reader, body, pending.start, d, label, seg.id == "SE")
        ordinal, line = ordinal + 1, after
        reader.feed(d, seg)
        if (
            seg.id == "ST"
            and isinstance(reader.handler, ClaimsReader)
            and not reader.ts.set_problems
        ):
            pending.body, pending.start = [], (ordinal, line)
        cursor = end + len(term)
    if cursor < len(block) or (cursor == len(block) and block.endswith(term)):
        take(block[cursor:])


def _body(
    reader: _Reader, body: list[str], start: tuple[int, int], d, label: str, closed: bool
) -> None:
    """Give a set's gathered body to its reader: in bulk when clean, else segment by segment."""
    handler: ClaimsReader = reader.handler
    texts = body
    result = None
    if closed and body:
        try:
            result = _columnar(texts, handler.kind, d.element, d.component, start[1])
        except _Unclean:
            result = None
    if result is not None:
        header, claims = result
        for claim in claims:
            claim.set_control = reader.ts.control
        _locate(claims, body, start, d, label, reader.ts)
        handler.accept_bulk(header, claims)
        reader.ts.bulk = True
        reader.position = 1 + len(body)
        return
    ordinal, line = start
    for raw in body:
        seg, line = make_segment(raw, d.element, ordinal, line, label)
        ordinal += 1
        reader.position += 1
        handler.segment(seg, reader.position)


def _locate(
    claims: list[Claim837], body: list[str], start, d, label: str, ts: TransactionSet
) -> None:
    """Where each claim was read in the file, and its sources when someone asks."""
    ordinal = start[0]
    cache: dict[str, Any] = {}

    def sources(index: int) -> dict:
        if "claims" not in cache:
            found: list[Claim837] = []
            precise = ClaimsReader(
                ts.__class__(
                    ts.code, ts.control, ts.version, ts.group, ts.interchange, ts.ordinal, ts.line
                ),
                d,
                found.append,
            )
            o, ln = start
            for n, raw in enumerate(body):
                seg, ln = make_segment(raw, d.element, o, ln, label)
                o += 1
                precise.segment(seg, n + 2)
            precise.finish()
            cache["claims"] = found
        return cache["claims"][index].sources

    for index, claim in enumerate(claims):
        claim.ordinal += ordinal
        claim.locate = lambda i=index: sources(i)

"""ZIP codes, counties and distances: where members live and how far a doctor is.

The ZIP table (shipped in data/zip_codes.csv.gz) gives each ZIP code its city, state,
county FIPS code and a centroid. Distances are great-circle miles between centroids
or geocoded locations, which is what a provider directory's "within 10 miles" means.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import addfips
import polars as pl

EARTH_RADIUS_MILES = 3958.7613


@dataclass(frozen=True, slots=True)
class ZipCode:
    zip_code: str
    zip_type: str
    city: str
    state: str
    county: str
    county_fips: str | None
    lat: float
    lon: float


class UnknownZip(ValueError):
    pass


class UnknownCounty(ValueError):
    pass


def _zip_bytes() -> bytes:
    return resources.files("openhmo.reference").joinpath("data/zip_codes.csv.gz").read_bytes()


@cache
def zip_table() -> dict[str, ZipCode]:
    reader = csv.DictReader(io.StringIO(gzip.decompress(_zip_bytes()).decode()))
    return {
        r["zip_code"]: ZipCode(
            r["zip_code"],
            r["zip_type"],
            r["city"],
            r["state"],
            r["county"],
            r["county_fips"] or None,
            float(r["lat"]),
            float(r["lon"]),
        )
        for r in reader
    }


def normalise_zip(zip_code: str) -> str:
    """The 5-digit ZIP of '02108', '02108-1234' or '021081234'."""
    digits = "".join(ch for ch in str(zip_code) if ch.isdigit())
    if len(digits) not in (5, 9):
        raise UnknownZip(f"{zip_code!r} is not a ZIP code (expected 5 or 9 digits)")
    return digits[:5]


def lookup_zip(zip_code: str) -> ZipCode:
    z = normalise_zip(zip_code)
    try:
        return zip_table()[z]
    except KeyError:
        raise UnknownZip(f"ZIP code {z} is not a known US ZIP code") from None


@cache
def counties() -> dict[str, tuple[str, str]]:
    """County FIPS -> (county name, state), for every county that has a ZIP code.

    Read from the table's three columns, not from zip_table: a plan design's service
    area is checked with it in every process that loads designs (a batch run, the
    CLI), and building all 41,000 ZIP codes took 0.16 s of each.
    """
    frame = (
        pl.read_csv(
            io.BytesIO(gzip.decompress(_zip_bytes())),
            columns=["county_fips", "county", "state"],
            infer_schema=False,
        )
        .filter(pl.col("county_fips").is_not_null() & (pl.col("county_fips") != ""))
        # (As a dict built ZIP by ZIP: a county's last ZIP code names it.)
        .unique("county_fips", keep="last", maintain_order=True)
    )
    return {
        fips: (county, state)
        for fips, county, state in frame.select("county_fips", "county", "state").iter_rows()
    }


def county_fips(text: str) -> str:
    """The 5-digit FIPS code of '25025', 'Suffolk County, MA' or 'Suffolk, MA'."""
    text = text.strip()
    if text.isdigit() and len(text) == 5:
        if text not in counties():
            raise UnknownCounty(f"{text} is not the FIPS code of a US county")
        return text
    name, _, state = text.rpartition(",")
    if not name or len(state.strip()) != 2:
        raise UnknownCounty(
            f"{text!r} is not a county: write its 5-digit FIPS code or 'Name County, ST'"
        )
    found = addfips.AddFIPS().get_county_fips(name.strip(), state=state.strip())
    if not found:
        raise UnknownCounty(f"{text!r} is not a county of {state.strip()}")
    return found


def zip_for_town(city: str, state: str) -> ZipCode | None:
    """The first standard ZIP code of a town, for addresses that came without a usable one."""
    wanted = (city.strip().casefold(), state.strip().upper())
    matches = sorted(
        (
            z
            for z in zip_table().values()
            if (z.city.casefold(), z.state) == wanted and z.zip_type == "STANDARD"
        ),
        key=lambda z: z.zip_code,
    )
    return matches[0] if matches else None


def county_name(fips: str) -> str:
    name, state = counties().get(fips, (fips, ""))
    return f"{name}, {state}" if state else name


def zips_in_counties(fips_codes: set[str]) -> list[ZipCode]:
    return [z for z in zip_table().values() if z.county_fips in fips_codes]


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(a))

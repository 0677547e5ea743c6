"""Derive the reference tables OpenHMO ships from the shared corpus (run once; output committed).

- zip_codes.csv.gz: ZIP code, type, city, state, county, county FIPS (via addfips),
  latitude, longitude. From the `zipcodes` package data (MIT; coordinates GeoNames,
  CC-BY-4.0): see src/openhmo/reference/data/NOTICE.md.
- Copies of the NUCC taxonomy, place-of-service, CARC and group code lists, and the
  2022 Medicare physician fee schedule RVU sample and GPCIs.
"""

import bz2
import csv
import gzip
import io
import json
import shutil
import sys
from pathlib import Path

import addfips

CORPUS = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/corpus")
OUT = Path(__file__).resolve().parents[1] / "src" / "openhmo" / "reference" / "data"


def zip_codes() -> None:
    fips = addfips.AddFIPS()
    with bz2.open(CORPUS / "codes" / "us_zipcodes_2021.json.bz2") as handle:
        rows = json.load(handle)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["zip_code", "zip_type", "city", "state", "county", "county_fips", "lat", "lon"]
    )
    for r in sorted(rows, key=lambda r: r["zip_code"]):
        if r["country"] != "US" or not r["active"]:
            continue
        county_fips = fips.get_county_fips(r["county"], state=r["state"]) if r["county"] else None
        writer.writerow(
            [
                r["zip_code"],
                r["zip_code_type"],
                r["city"],
                r["state"],
                r["county"],
                county_fips or "",
                r["lat"],
                r["long"],
            ]
        )
    with gzip.GzipFile(OUT / "zip_codes.csv.gz", "wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode())


def copies() -> None:
    for name in (
        "nucc_provider_taxonomy_2021.csv",
        "place_of_service_codes_bfd.csv",
        "carc_claim_adjustment_reason_codes_bfd.csv",
        "carc_group_codes_bfd.csv",
        "mpfs_pprrvu22_jan_sample.csv",
        "mpfs_gpci2022.csv",
    ):
        shutil.copyfile(CORPUS / "codes" / name, OUT / name)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    zip_codes()
    copies()

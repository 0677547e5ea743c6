"""ZIP codes and counties (openhmo.reference.geo): the shipped table read two ways agrees."""

from __future__ import annotations

import pytest

from openhmo.reference import geo


def test_counties_are_what_the_zip_table_says_of_them():
    # counties() reads three columns of the table (plan designs check service areas
    # with it in every process); it must say what the ZIP codes themselves say.
    from_zips = {
        z.county_fips: (z.county, z.state) for z in geo.zip_table().values() if z.county_fips
    }
    assert geo.counties() == from_zips
    assert geo.counties()["25025"] == ("Suffolk County", "MA")
    assert len(from_zips) > 3000


def test_a_county_is_named_by_fips_or_by_name_and_an_unknown_one_is_refused():
    assert geo.county_fips("25025") == "25025"
    assert geo.county_fips("Suffolk County, MA") == "25025"
    assert geo.county_name("25025") == "Suffolk County, MA"
    with pytest.raises(geo.UnknownCounty, match="99999"):
        geo.county_fips("99999")

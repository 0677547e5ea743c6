"""Pricing is a pure function of data: per-code amounts, percent of Medicare, case rates.

The Medicare fees are worked by hand from the shipped 2022 RVU sample and GPCIs:
fee = (work RVU x work GPCI + PE RVU x PE GPCI + MP RVU x MP GPCI) x 34.6062.
"""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhmo.network.medicare import (
    NoMedicareFee,
    UnknownCode,
    UnknownLocality,
    find_locality,
    medicare_fee,
    medicare_fee_detail,
)
from openhmo.network.pricing import (
    FeeScheduleSnapshot,
    NoRate,
    Rate,
    RateKey,
    ServiceLine,
    allowed_amount,
    is_facility,
)

CF = Decimal("34.6062")


def by_hand(work, work_gpci, pe, pe_gpci, mp, mp_gpci) -> int:
    total = (
        Decimal(work) * Decimal(work_gpci)
        + Decimal(pe) * Decimal(pe_gpci)
        + Decimal(mp) * Decimal(mp_gpci)
    ) * CF
    return int((total * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_99213_in_metropolitan_boston_non_facility():
    # 99213: work 1.30, non-facility PE 1.26, MP 0.10; MA-01: 1.049 / 1.203 / 0.842.
    # (1.3637 + 1.51578 + 0.0842) x 34.6062 = 102.5617 -> $102.56
    assert by_hand("1.30", "1.049", "1.26", "1.203", "0.10", "0.842") == 10256
    assert medicare_fee("99213", "", "MA-01", facility=False) == 10256


def test_99213_in_a_facility_uses_the_facility_practice_expense():
    # Facility PE RVU 0.55: (1.3637 + 0.66165 + 0.0842) x 34.6062 = 73.0035 -> $73.00
    assert medicare_fee("99213", "", "MA-01", facility=True) == 7300


def test_99214_in_manhattan_and_99203_in_the_rest_of_massachusetts():
    assert (
        medicare_fee("99214", "", "NY-01")
        == by_hand("1.92", "1.056", "1.71", "1.203", "0.12", "2.031")
        == 14979
    )
    assert (
        medicare_fee("99203", "", "MA-99")
        == by_hand("1.60", "1.026", "1.52", "1.061", "0.17", "0.842")
        == 11757
    )


def test_professional_and_technical_components_have_rows_of_their_own():
    assert (
        medicare_fee("76801", "TC", "MA-01")
        == by_hand("0", "1.049", "2.12", "1.203", "0.01", "0.842")
        == 8855
    )
    assert medicare_fee("76801", "26", "MA-01", facility=True) == 5209
    # A modifier that does not change the price (25) prices as the global code.
    assert medicare_fee("99213", "25", "MA-01") == 10256
    with pytest.raises(UnknownCode, match="99213 has no TC row"):
        medicare_fee("99213", "TC", "MA-01")


def test_localities_by_key_or_by_name():
    assert find_locality("MA-01").name == "METROPOLITAN BOSTON"
    assert find_locality("ma 1").key == "MA-01"
    assert find_locality("Metropolitan Boston").key == "MA-01"
    assert find_locality("alaska").key == "AK-01"  # the file writes ALASKA* (a GPCI floor)
    with pytest.raises(UnknownLocality, match="ZZ-01"):
        find_locality("ZZ-01")
    with pytest.raises(UnknownLocality, match="Gotham"):
        find_locality("Gotham")


@pytest.mark.parametrize(("code", "status"), [("80053", "X"), ("A0021", "I"), ("J0696", "E")])
def test_codes_medicare_does_not_pay_under_the_fee_schedule_say_so(code, status):
    with pytest.raises(NoMedicareFee, match=f"no Medicare fee for {code}: status {status}"):
        medicare_fee(code, "", "MA-01")


def test_a_code_not_in_the_sample_is_a_clear_error():
    with pytest.raises(UnknownCode, match="99999 is not in the 2022 Medicare fee schedule"):
        medicare_fee("99999", "", "MA-01")
    with pytest.raises(ValueError, match="no Medicare fee schedule for 2026"):
        medicare_fee("99213", "", "MA-01", year=2026)


def test_the_detail_explains_the_computation():
    detail = medicare_fee_detail("99285", "", "MA-01").detail
    assert "(4.00x1.049 + 0.75x1.203 + 0.42x0.842) x 34.6062" in detail
    assert "non-facility NA" in detail


# --- allowed amounts ------------------------------------------------------------------

PER_CODE = FeeScheduleSnapshot(
    key="acme-ffs",
    method="per_code",
    rates={
        RateKey("99214"): Rate(15000),
        RateKey("27447", "AS", "professional", "11"): Rate(12345),
        RateKey("27447", "", "professional"): Rate(12045),
        RateKey("27447", "", "institutional"): Rate(123045),
        RateKey("0200", "", "institutional"): Rate(550000, "per_diem"),
        RateKey("81.54"): Rate(2000000, "per_case"),
    },
)
MEDICARE_120 = FeeScheduleSnapshot(
    key="core-120",
    method="percent_of_medicare",
    percent=Decimal("120"),
    medicare_locality="MA-01",
    rates={RateKey("99214"): Rate(20000)},
)
CASE_RATES = FeeScheduleSnapshot(
    key="knee", method="case_rate", rates={RateKey("27447"): Rate(2500000)}
)


def test_per_code_amounts_times_units():
    priced = allowed_amount(ServiceLine("99214", units=Decimal(3)), PER_CODE)
    assert priced.amount_cents == 45000 and priced.method == "per_code"


def test_the_most_specific_rate_wins():
    line = ServiceLine("27447", modifiers=("AS",), place_of_service="11")
    assert allowed_amount(line, PER_CODE).amount_cents == 12345
    assert (
        allowed_amount(ServiceLine("27447", place_of_service="11"), PER_CODE).amount_cents == 12045
    )
    institutional = ServiceLine("27447", place_of_service="21", billing_class="institutional")
    assert allowed_amount(institutional, PER_CODE).amount_cents == 123045


def test_per_diem_is_paid_per_day_and_a_case_rate_once():
    stay = ServiceLine(
        "0200", units=Decimal(4), place_of_service="21", billing_class="institutional"
    )
    assert allowed_amount(stay, PER_CODE).amount_cents == 2200000
    bundle = allowed_amount(ServiceLine("81.54", units=Decimal(3)), PER_CODE)
    assert bundle.amount_cents == 2000000 and bundle.method == "case_rate"
    knee = allowed_amount(ServiceLine("27447", units=Decimal(2)), CASE_RATES)
    assert knee.amount_cents == 2500000 and knee.method == "case_rate"


def test_percent_of_medicare():
    # 120% of $102.56 = $123.072 -> $123.07; two units: $246.144 -> $246.14
    assert allowed_amount(ServiceLine("99213"), MEDICARE_120).amount_cents == 12307
    priced = allowed_amount(ServiceLine("99213", units=Decimal(2)), MEDICARE_120)
    assert priced.amount_cents == 24614 and priced.method == "percent_of_medicare"
    assert "120% of $102.56" in priced.detail


def test_a_per_code_amount_overrides_medicare():
    priced = allowed_amount(ServiceLine("99214"), MEDICARE_120)
    assert priced.amount_cents == 20000 and priced.method == "per_code"


def test_facility_or_not_follows_the_place_of_service():
    assert is_facility("22") and is_facility("21") and not is_facility("11")
    assert not is_facility("2")  # POS 02, telehealth
    office = allowed_amount(ServiceLine("99213", place_of_service="11"), MEDICARE_120)
    outpatient = allowed_amount(ServiceLine("99213", place_of_service="22"), MEDICARE_120)
    assert office.amount_cents == 12307  # 120% of $102.56
    assert outpatient.amount_cents == 8760  # 120% of $73.00


def test_no_rate_is_an_error_adjudication_can_pend():
    with pytest.raises(NoRate) as caught:
        allowed_amount(ServiceLine("99999"), PER_CODE)
    assert caught.value.schedule_key == "acme-ffs"
    assert "no rate for 99999 in fee schedule acme-ffs" in str(caught.value)
    with pytest.raises(NoRate, match="status X"):
        allowed_amount(ServiceLine("80053"), MEDICARE_120)
    with pytest.raises(NoRate, match="institutional line needs a per-code amount"):
        allowed_amount(ServiceLine("99213", billing_class="institutional"), MEDICARE_120)
    with pytest.raises(NoRate):
        allowed_amount(ServiceLine("99214"), CASE_RATES)


def test_bad_schedules_and_lines_are_refused():
    with pytest.raises(ValueError, match="percent of Medicare needs"):
        FeeScheduleSnapshot(key="x", method="percent_of_medicare")
    with pytest.raises(ValueError, match="method 'capitation'"):
        FeeScheduleSnapshot(key="x", method="capitation")
    with pytest.raises(ValueError, match="units must be positive"):
        ServiceLine("99213", units=Decimal(0))
    with pytest.raises(ValueError, match="rate unit"):
        Rate(100, "per_week")


percents = st.decimals(min_value=1, max_value=400, places=3, allow_nan=False, allow_infinity=False)


@given(
    percents,
    percents,
    st.integers(min_value=1, max_value=20),
    st.sampled_from(["99202", "99213", "99214", "99215", "97110", "76801"]),
    st.sampled_from(["11", "22"]),
)
def test_percent_of_medicare_is_monotone_in_percent_and_exact_in_cents(low, high, units, code, pos):
    low, high = min(low, high), max(low, high)

    def priced(percent):
        schedule = FeeScheduleSnapshot(
            key="p", method="percent_of_medicare", percent=percent, medicare_locality="MA-01"
        )
        return allowed_amount(
            ServiceLine(code, units=Decimal(units), place_of_service=pos), schedule
        ).amount_cents

    fee = medicare_fee(code, "", "MA-01", facility=is_facility(pos))
    exact = Decimal(fee) * high / 100 * units
    assert priced(high) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert isinstance(priced(high), int)
    assert priced(low) <= priced(high)

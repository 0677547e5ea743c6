"""The names of the service categories a plan design prices and a claim line falls into.

They follow the rows of a Summary of Benefits and Coverage, so a plan design can be
written, and read, the way an SBC is. Adjudication, the plan designs and the CMS
template importer all use this one list.
"""

from __future__ import annotations

from enum import StrEnum


class ServiceCategory(StrEnum):
    PREVENTIVE = "preventive"
    PCP_VISIT = "pcp_visit"
    SPECIALIST_VISIT = "specialist_visit"
    OB_GYN_VISIT = "ob_gyn_visit"
    SCREENING_MAMMOGRAPHY = "screening_mammography"
    URGENT_CARE = "urgent_care"
    EMERGENCY_ROOM = "emergency_room"
    AMBULANCE = "ambulance"
    INPATIENT = "inpatient"
    OUTPATIENT_SURGERY = "outpatient_surgery"
    IMAGING = "imaging"
    ADVANCED_IMAGING = "advanced_imaging"
    LAB = "lab"
    MENTAL_HEALTH_OUTPATIENT = "mental_health_outpatient"
    MENTAL_HEALTH_INPATIENT = "mental_health_inpatient"
    MATERNITY = "maternity"
    REHABILITATION = "rehabilitation"
    CHIROPRACTIC = "chiropractic"
    DME = "dme"
    SKILLED_NURSING = "skilled_nursing"
    HOME_HEALTH = "home_health"
    HOSPICE = "hospice"
    DRUGS_GENERIC = "drugs_generic"
    DRUGS_PREFERRED_BRAND = "drugs_preferred_brand"
    DRUGS_NON_PREFERRED_BRAND = "drugs_non_preferred_brand"
    DRUGS_SPECIALTY = "drugs_specialty"
    OTHER = "other"


# The formulary tier of a drug claim line decides its category.
DRUG_TIERS: dict[str, ServiceCategory] = {
    "generic": ServiceCategory.DRUGS_GENERIC,
    "preferred_brand": ServiceCategory.DRUGS_PREFERRED_BRAND,
    "non_preferred_brand": ServiceCategory.DRUGS_NON_PREFERRED_BRAND,
    "specialty": ServiceCategory.DRUGS_SPECIALTY,
}

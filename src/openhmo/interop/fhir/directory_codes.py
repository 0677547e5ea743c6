"""The code systems and code tables of the directory's Plan-Net resources.

Plan-Net's own code systems (ProviderRoleCS, HealthcareServiceCategoryCS,
AcceptingPatientsCS), and how our data maps to them: NUCC taxonomy codes to provider
roles and to service categories, language names to BCP 47 tags. Data, and the few pure
functions that read it.
"""

from __future__ import annotations

from openhmo.network.taxonomy import Taxonomy, taxonomy_table

PLANNET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
PROFILE = f"{PLANNET}/StructureDefinition/plannet-"
NEWPATIENTS = f"{PLANNET}/StructureDefinition/newpatients"
NETWORK_REFERENCE = f"{PLANNET}/StructureDefinition/network-reference"
ACCEPTING_SYSTEM = f"{PLANNET}/CodeSystem/AcceptingPatientsCS"
ROLE_SYSTEM = f"{PLANNET}/CodeSystem/ProviderRoleCS"
SERVICE_CATEGORY_SYSTEM = f"{PLANNET}/CodeSystem/HealthcareServiceCategoryCS"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
# Bundle.entry.search extension (core R4) carrying a `near` search's distance.
LOCATION_DISTANCE = "http://hl7.org/fhir/StructureDefinition/location-distance"
UCUM = "http://unitsofmeasure.org"

ACCEPTING = {True: ("newpt", "Accepting"), False: ("nopt", "Not Accepting")}

# Languages as provider_language holds them (NPPES-style names) -> BCP 47.
LANGUAGE_CODES = {
    "Arabic": "ar",
    "Cantonese": "yue",
    "Chinese": "zh",
    "English": "en",
    "French": "fr",
    "German": "de",
    "Greek": "el",
    "Haitian Creole": "ht",
    "Hindi": "hi",
    "Italian": "it",
    "Japanese": "ja",
    "Korean": "ko",
    "Mandarin": "cmn",
    "Polish": "pl",
    "Portuguese": "pt",
    "Russian": "ru",
    "Spanish": "es",
    "Swedish": "sv",
    "Tagalog": "tl",
    "Vietnamese": "vi",
}

# Plan-Net ProviderRoleCS by NUCC taxonomy prefix (longest first wins), then by grouping.
_ROLE_BY_PREFIX = {
    "363A": ("pa", "Physician Assistant"),
    "363L": ("crnp", "Certified Registered Nurse Practitioner"),
    "367A": ("cnw", "Certified Nurse Midwife"),
    "103T": ("py", "Psychologist"),
    "1041": ("sw", "Social Worker"),
    "101Y": ("co", "Counselor"),
    "106H": ("mt", "Marriage/Family Therapist"),
    "1223": ("de", "Dentist"),
    "152W": ("oo", "Optometrist"),
    "156F": ("op", "Optician"),
    "163W": ("rn", "Registered Nurse"),
    "164W": ("lpn", "Licensed Practical Nurse"),
    "2251": ("pt", "Physical Therapist"),
    "225X": ("ot", "Occupational Therapist"),
    "2278": ("rt", "Respiratory Therapist"),
    "231H": ("au", "Audiologist"),
    "235Z": ("sp", "Speech Language Pathologist"),
}
_ROLE_BY_GROUPING = {
    "Allopathic & Osteopathic Physicians": ("ph", "Physician"),
    "Physician Assistants & Advanced Practice Nursing Providers": (
        "apn",
        "Advanced Practice Nursing Providers",
    ),
    "Behavioral Health & Social Service Providers": (
        "bh",
        "Behavioral Health & Social Service Providers",
    ),
    "Chiropractic Providers": ("ch", "Chiropractor"),
    "Dental Providers": ("dp", "Dental Provider"),
    "Dietary & Nutritional Service Providers": ("dn", "Dietary and Nutritional Service Provider"),
    "Emergency Medical Service Providers": ("em", "Emergency Medical Service Provider"),
    "Nursing Service Providers": ("nu", "Nursing Service Related Providers"),
    "Nursing Service Related Providers": ("nu", "Nursing Service Related Providers"),
    "Pharmacy Service Providers": ("rx", "Pharmacy Service Providers"),
    "Podiatric Medicine & Surgery Service Providers": ("po", "Podiatrist"),
    "Respiratory, Developmental, Rehabilitative and Restorative Service Providers": (
        "drr",
        "Developmental, Rehabilitative and Restorative Service Providers",
    ),
    "Speech, Language and Hearing Service Providers": (
        "sh",
        "Speech, Language and Hearing Service Providers",
    ),
    "Technologists, Technicians & Other Technical Service Providers": (
        "te",
        "Technologists, Technicians and Other Technical Service Providers",
    ),
}
_OTHER_ROLE = ("os", "Other Service Provider")

CATEGORY_DISPLAY = {
    "behav": "Behavioral Health",
    "dent": "Dental",
    "dme": "DME/Medical Supplies",
    "emerg": "Emergency care",
    "group": "Medical Group",
    "home": "Home Health",
    "hosp": "Hospital",
    "lab": "Laboratory",
    "other": "Other",
    "outpat": "Clinic or Outpatient Facility",
    "prov": "Medical Provider",
    "pharm": "Pharmacy",
    "trans": "Transportation",
    "urg": "Urgent Care",
    "vis": "Vision",
}
_CATEGORY_BY_GROUPING = {
    "Hospitals": "hosp",
    "Hospital Units": "hosp",
    "Laboratories": "lab",
    "Transportation Services": "trans",
    "Pharmacy Service Providers": "pharm",
    "Behavioral Health & Social Service Providers": "behav",
    "Dental Providers": "dent",
    "Eye and Vision Services Providers": "vis",
    "Group": "group",
    "Ambulatory Health Care Facilities": "outpat",
    "Agencies": "other",
    "Nursing & Custodial Care Facilities": "other",
    "Residential Treatment Facilities": "other",
    "Respite Care Facility": "other",
    "Managed Care Organizations": "other",
}
_CATEGORY_BY_PREFIX = {
    "261QU": "urg",
    "3336": "pharm",
    "332B": "dme",
    "2084P": "behav",
    "207W": "vis",
    "207P": "emerg",
    "251E": "home",
}


def taxonomy_of(code: str | None) -> Taxonomy | None:
    return taxonomy_table().get(code or "")


def role_code(code: str | None) -> tuple[str, str]:
    """The Plan-Net ProviderRoleCS code for a NUCC taxonomy code."""
    code = (code or "").upper()
    for prefix in sorted(_ROLE_BY_PREFIX, key=len, reverse=True):
        if code.startswith(prefix):
            return _ROLE_BY_PREFIX[prefix]
    known = taxonomy_of(code)
    return _ROLE_BY_GROUPING.get(known.grouping, _OTHER_ROLE) if known else _OTHER_ROLE


def taxonomy_codes_of_role(role: str) -> list[str]:
    """Every NUCC code whose ProviderRoleCS code is `role` (the `role` search)."""
    return sorted(code for code in taxonomy_table() if role_code(code)[0] == role)


def service_category(code: str) -> str:
    """The Plan-Net HealthcareServiceCategoryCS code for a NUCC taxonomy code."""
    for prefix in sorted(_CATEGORY_BY_PREFIX, key=len, reverse=True):
        if code.startswith(prefix):
            return _CATEGORY_BY_PREFIX[prefix]
    known = taxonomy_of(code)
    if known is None:
        return "other"
    return _CATEGORY_BY_GROUPING.get(known.grouping, "prov")

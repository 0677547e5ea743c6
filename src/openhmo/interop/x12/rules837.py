"""The 837's element rules and code lists, as data: what 837P (005010X222A1/A2) and 837I
(005010X223A2/A3) allow, as the guides print it.

`RULES` gives, per segment, each element's usage, type, length and codes (see
`elements.rule`); `KNOWN` every segment the two guides allow in an 837's body. The
reader (`claims837.ClaimsReader`) checks every segment against them.
"""

from __future__ import annotations

from openhmo.interop.x12.elements import Rule, rule

PROFESSIONAL = ("005010X222A1", "005010X222A2")
INSTITUTIONAL = ("005010X223A1", "005010X223A2", "005010X223A3")

_ENTITY = "M ID 2 3"
RULES: dict[str, tuple[Rule, ...]] = {
    "BHT": (
        rule("M ID 4 4 0019", "Hierarchical Structure Code"),
        rule("M ID 2 2 00,18", "Transaction Set Purpose Code"),
        rule("M AN 1 50", "Originator Application Transaction Identifier"),
        rule("M DT 8 8", "Transaction Set Creation Date"),
        rule("M TM 4 8", "Transaction Set Creation Time"),
        rule("M ID 2 2 31,CH,RP", "Claim or Encounter Identifier"),
    ),
    "NM1": (
        rule(_ENTITY, "Entity Identifier Code"),
        rule("M ID 1 1 1,2", "Entity Type Qualifier"),
        rule("O AN 1 60", "Name Last or Organization Name"),
        rule("O AN 1 35", "Name First"),
        rule("O AN 1 25", "Name Middle"),
        rule("X"),
        rule("O AN 1 10", "Name Suffix"),
        rule("O ID 1 2", "Identification Code Qualifier"),
        rule("O AN 2 80", "Identification Code"),
        rule("X"),
        rule("X"),
        rule("O AN 1 60", "Name Last or Organization Name"),
    ),
    "HL": (
        rule("M AN 1 12", "Hierarchical ID Number"),
        rule("O AN 1 12", "Hierarchical Parent ID Number"),
        rule("M ID 1 2 20,22,23", "Hierarchical Level Code"),
        rule("O ID 1 1 0,1", "Hierarchical Child Code"),
    ),
    "SBR": (
        rule("M ID 1 1 A,B,C,D,E,F,G,H,P,S,T,U", "Payer Responsibility Sequence Number Code"),
        rule("O ID 2 2", "Individual Relationship Code"),
        rule("O AN 1 50", "Reference Identification"),
        rule("O AN 1 60", "Name"),
        rule("O ID 1 3", "Insurance Type Code"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("O ID 1 2", "Claim Filing Indicator Code"),
    ),
    "DMG": (
        rule("M ID 2 3 D8"),
        rule("M DT 8 8", "Date Time Period"),
        rule("O ID 1 1 F,M,U", "Gender Code"),
    ),
    "CLM": (
        rule("M AN 1 38", "Claim Submitter's Identifier"),
        rule("M R 1 18", "Monetary Amount"),
        rule("X"),
        rule("X"),
        rule(
            "M C",
            "Health Care Service Location Information",
            rule("M AN 1 2", "Facility Code Value"),
            rule("M ID 1 2 A,B", "Facility Code Qualifier"),
            rule("M ID 1 1 1,7,8", "Claim Frequency Type Code"),
        ),
        rule("O ID 1 1 N,Y", "Yes/No Condition or Response Code"),
        rule("M ID 1 1 A,B,C", "Provider Accept Assignment Code"),
        rule("M ID 1 1 N,W,Y", "Yes/No Condition or Response Code"),
        rule("M ID 1 1 I,Y", "Release of Information Code"),
        rule("O ID 1 1 P", "Patient Signature Source Code"),
        rule(
            "O C",
            "Related Causes Information",
            rule("M ID 2 3"),
            rule("O ID 2 3"),
            rule("X"),
            rule("O ID 2 2"),
            rule("O ID 2 3"),
        ),
        rule("O ID 2 3", "Special Program Code"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("O ID 1 2", "Delay Reason Code"),
    ),
    "DTP": (
        rule("M ID 3 3", "Date/Time Qualifier"),
        rule("M ID 2 3 D8,RD8,DT", "Date Time Period Format Qualifier"),
        rule("M AN 1 35", "Date Time Period"),
    ),
    "REF": (
        rule("M ID 2 3", "Reference Identification Qualifier"),
        rule("M AN 1 50", "Reference Identification"),
    ),
    "LX": (rule("M N0 1 6", "Assigned Number"),),
    "PWK": (
        rule("M ID 2 2", "Attachment Report Type Code"),
        rule("M ID 1 2 AA,BM,EL,EM,FT,FX", "Attachment Transmission Code"),
        rule("X"),
        rule("X"),
        rule("O ID 2 2 AC", "Identification Code Qualifier"),
        rule("O AN 2 80", "Attachment Control Number"),
    ),
    "SV1": (
        rule(
            "M C",
            "Composite Medical Procedure Identifier",
            rule("M ID 2 2 ER,HC,IV,WK", "Product/Service ID Qualifier"),
            rule("M AN 1 48", "Procedure Code"),
            rule("O AN 2 2", "Procedure Modifier"),
            rule("O AN 2 2", "Procedure Modifier"),
            rule("O AN 2 2", "Procedure Modifier"),
            rule("O AN 2 2", "Procedure Modifier"),
            rule("O AN 1 80", "Description"),
        ),
        rule("M R 1 18", "Line Item Charge Amount"),
        rule("M ID 2 2 MJ,UN", "Unit or Basis for Measurement Code"),
        rule("M R 1 15", "Service Unit Count"),
        rule("O AN 1 2", "Place of Service Code"),
        rule("X"),
        rule(
            "M C",
            "Composite Diagnosis Code Pointer",
            rule("M N0 1 2"),
            rule("O N0 1 2"),
            rule("O N0 1 2"),
            rule("O N0 1 2"),
        ),
        rule("X"),
        rule("O ID 1 1 Y", "Emergency Indicator"),
        rule("X"),
        rule("O ID 1 1 Y", "EPSDT Indicator"),
        rule("O ID 1 1 Y", "Family Planning Indicator"),
        rule("X"),
        rule("X"),
        rule("O ID 1 2 0", "Copay Status Code"),
    ),
    "SV2": (
        rule("M AN 1 48", "Service Line Revenue Code"),
        rule(
            "O C",
            "Composite Medical Procedure Identifier",
            rule("M ID 2 2 ER,HC,HP,IV,WK", "Product/Service ID Qualifier"),
            rule("M AN 1 48", "Procedure Code"),
            rule("O AN 2 2"),
            rule("O AN 2 2"),
            rule("O AN 2 2"),
            rule("O AN 2 2"),
            rule("O AN 1 80", "Description"),
        ),
        rule("M R 1 18", "Line Item Charge Amount"),
        rule("M ID 2 2 DA,UN", "Unit or Basis for Measurement Code"),
        rule("M R 1 15", "Service Unit Count"),
        rule("O R 1 10", "Unit Rate"),
        rule("O R 1 18", "Line Item Denied Charge or Non-Covered Charge Amount"),
        rule("X"),
        rule("X"),
        rule("X"),
    ),
}
# Every segment the two guides allow in an 837's body; anything else is unrecognized.
KNOWN = frozenset(
    [
        "BHT",
        "NM1",
        "N2",
        "N3",
        "N4",
        "PER",
        "REF",
        "PRV",
        "CUR",
        "HL",
        "SBR",
        "PAT",
        "DMG",
        "CLM",
        "DTP",
        "CL1",
        "PWK",
        "CN1",
        "AMT",
        "K3",
        "NTE",
        "CR1",
        "CR2",
        "CR3",
        "CRC",
        "HI",
        "HCP",
        "SBR",
        "CAS",
        "OI",
        "MOA",
        "MIA",
        "LX",
        "SV1",
        "SV2",
        "SV5",
        "QTY",
        "MEA",
        "PS1",
        "LIN",
        "CTP",
        "SVD",
        "LQ",
        "FRM",
        "TOO",
    ]
)
# HI01-1 qualifiers of diagnoses (ICD-10-CM, ICD-9-CM), True for the principal one.
DX_ICD10 = {"ABK": True, "ABF": False, "ABJ": False, "APR": False, "ABN": False}
DX_ICD9 = {"BK": True, "BF": False, "BJ": False, "PR": False, "BN": False}
# The other HI qualifiers of the two guides: procedures, occurrence, value and condition
# codes, DRG, treatment codes. Read past, not taken.
HI_OTHER = frozenset(
    ["BBR", "BBQ", "BR", "BQ", "BP", "BO", "BH", "BI", "BE", "BG", "TC", "DR", "CAH"]
)

# AMT01 qualifiers each loop allows (837P and 837I together).
AMOUNT_QUALIFIERS: dict[str, frozenset[str]] = {
    "2300": frozenset({"F3", "F5"}),
    "2320": frozenset({"D", "A8", "EAF"}),
    "2400": frozenset({"T", "F4", "GT", "N8"}),
}

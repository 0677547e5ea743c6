"""The 834's element rules and code lists (005010X220A1), as data.

`RULES` gives, per segment, each element's usage, type, length and codes as the guide
prints them (see `elements.rule`); `LOOP_RULES` the segments whose codes depend on the
loop they stand in (REF, DTP, NM1, N1); `KNOWN` every segment the guide allows in an
834's body. `MAINTENANCE_TYPES` and `MAINTENANCE_REASONS` say INS03 and INS04 in words.
`enrollment834.EnrollmentReader` checks against these.
"""

from __future__ import annotations

from openhmo.interop.x12.elements import Rule, rule

VERSIONS = ("005010X220A1", "005010X220")

MAINTENANCE_TYPES = {
    "001": "change",
    "021": "addition",
    "024": "termination",
    "025": "reinstatement",
    "030": "audit",
}
# INS04 maintenance reason codes, in words (for the history's reasons and the report).
MAINTENANCE_REASONS = {
    "01": "divorce", "02": "birth", "03": "death", "04": "retirement", "05": "adoption",
    "06": "strike", "07": "termination of benefits", "08": "termination of employment",
    "09": "COBRA", "10": "COBRA premium paid", "11": "surviving spouse",
    "14": "voluntary withdrawal", "15": "primary care provider change", "16": "quit",
    "17": "fired", "18": "suspended", "20": "active", "21": "disability", "22": "plan change",
    "25": "change in identifying data elements", "26": "declined coverage",
    "27": "pre-enrollment", "28": "initial enrollment", "29": "benefit selection",
    "31": "legal separation", "32": "marriage", "33": "personnel data",
    "37": "leave of absence with benefits", "38": "leave of absence without benefits",
    "39": "lay off with benefits", "40": "lay off without benefits", "41": "re-enrollment",
    "43": "change of location", "59": "non payment",
    "AA": "dissatisfaction with office staff",
    "AB": "dissatisfaction with medical care/services rendered",
    "AC": "inconvenient office location", "AD": "dissatisfaction with office hours",
    "AE": "unable to schedule appointments in a timely manner",
    "AF": "dissatisfaction with physician's referral policy",
    "AG": "less respect and attention time given than to other patients",
    "AH": "patient moved to a new location", "AI": "no reason given",
    "AJ": "appointment times not met in a timely manner",
    "AL": "algorithm assigned benefit selection", "EC": "member benefit selection",
    "XN": "notification only", "XT": "transfer",
}  # fmt: skip

_RELATIONSHIPS = (
    "01,03,04,05,06,07,08,09,10,11,12,13,14,15,16,17,18,19,23,24,25,26,31,38,53,60,D2,G8,G9"
)
_INSURANCE_LINES = (
    "AG,AH,AJ,AK,DCP,DEN,EPO,FAC,HE,HLT,HMO,LTC,LTD,MM,MOD,PDG,POS,PPO,PRA,STD,UR,VIS"
)
_COVERAGE_LEVELS = "CHD,DEP,E1D,E2D,E3D,E5D,E6D,E7D,E8D,E9D,ECH,EMP,ESP,FAM,IND,SPC,SPO,TWO"
_PHONES = "AP,BN,CP,EM,EX,FX,HP,TE,WP"


def _dtp(qualifiers: str) -> tuple[Rule, ...]:
    return (
        rule(f"M ID 3 3 {qualifiers}", "Date Time Qualifier"),
        rule("M ID 2 3 D8,RD8", "Date Time Period Format Qualifier"),
        rule("M AN 1 35", "Date Time Period"),
    )


def _ref(qualifiers: str | None) -> tuple[Rule, ...]:
    codes = f" {qualifiers}" if qualifiers else ""
    return (
        rule(f"M ID 2 3{codes}", "Reference Identification Qualifier"),
        rule("M AN 1 50", "Reference Identification"),
        rule("X"),
        rule("X"),
    )


def _nm1(entities: str | None, types: str, qualifiers: str | None, relationship: Rule) -> tuple:
    return (
        rule(f"M ID 2 3 {entities}" if entities else "M ID 2 3", "Entity Identifier Code"),
        rule(f"M ID 1 1 {types}", "Entity Type Qualifier"),
        rule("O AN 1 60", "Name Last or Organization Name"),
        rule("O AN 1 35", "Name First"),
        rule("O AN 1 25", "Name Middle"),
        rule("O AN 1 10", "Name Prefix"),
        rule("O AN 1 10", "Name Suffix"),
        rule(
            f"O ID 1 2 {qualifiers}" if qualifiers else "O ID 1 2", "Identification Code Qualifier"
        ),
        rule("O AN 2 80", "Identification Code"),
        relationship,
        rule("X"),
        rule("X"),
    )


def _n1(entities: str, name: str, qualifier: str) -> tuple[Rule, ...]:
    return (
        rule(f"M ID 2 3 {entities}", "Entity Identifier Code"),
        rule(f"{name} AN 1 60", "Name"),
        rule(qualifier, "Identification Code Qualifier"),
        rule(f"{qualifier[0]} AN 2 80", "Identification Code"),
        rule("X"),
        rule("X"),
    )


# Element rules, as the 005010X220A1 guide prints them. `RULES` holds a segment's rules
# wherever it appears; `LOOP_RULES` the ones whose codes depend on the loop.
RULES: dict[str, tuple[Rule, ...]] = {
    "BGN": (
        rule("M ID 2 2 00,15,22", "Transaction Set Purpose Code"),
        rule("M AN 1 50", "Reference Identification"),
        rule("M DT 8 8", "Date"),
        rule("M TM 4 8", "Time"),
        rule("O ID 2 2", "Time Code"),
        rule("O AN 1 50", "Reference Identification"),
        rule("X"),
        rule("M ID 1 2 2,4,RX", "Action Code"),
        rule("X"),
    ),
    "INS": (
        rule("M ID 1 1 N,Y", "Member Indicator"),
        rule(f"M ID 2 2 {_RELATIONSHIPS}", "Individual Relationship Code"),
        rule(f"M ID 3 3 {','.join(MAINTENANCE_TYPES)}", "Maintenance Type Code"),
        rule(f"O ID 2 3 {','.join(MAINTENANCE_REASONS)}", "Maintenance Reason Code"),
        rule("M ID 1 1 A,C,S,T", "Benefit Status Code"),
        rule(
            "O C",
            "Medicare Status Code",
            rule("M ID 1 1 A,B,C,D,E", "Medicare Plan Code"),
            rule("O ID 1 1 0,1,2", "Eligibility Reason Code"),
        ),
        rule("O ID 1 2 1,2,3,4,5,6,7,8,9,10,ZZ", "COBRA Qualifying Event Code"),
        rule("O ID 2 2 AC,AO,AU,FT,L1,PT,RT,TE", "Employment Status Code"),
        rule("O ID 1 1 F,N,P", "Student Status Code"),
        rule("O ID 1 1 N,Y", "Handicap Indicator"),
        rule("O ID 2 3 D8", "Date Time Period Format Qualifier"),
        rule("O AN 1 35", "Member Individual Death Date"),
        rule("O ID 1 1 R,U", "Confidentiality Code"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("O N0 1 9", "Birth Sequence Number"),
    ),
    "REF": _ref(None),
    "DTP": (
        rule("M ID 3 3", "Date Time Qualifier"),
        rule("M ID 2 3 D8,RD8", "Date Time Period Format Qualifier"),
        rule("M AN 1 35", "Date Time Period"),
    ),
    "NM1": _nm1(None, "1,2", None, rule("O ID 2 2", "Entity Relationship Code")),
    "PER": (
        rule("M ID 2 2 IP", "Contact Function Code"),
        rule("O AN 1 60", "Name"),
        rule(f"M ID 2 2 {_PHONES}", "Communication Number Qualifier"),
        rule("M AN 1 256", "Communication Number"),
        rule(f"O ID 2 2 {_PHONES}", "Communication Number Qualifier"),
        rule("O AN 1 256", "Communication Number"),
        rule(f"O ID 2 2 {_PHONES}", "Communication Number Qualifier"),
        rule("O AN 1 256", "Communication Number"),
        rule("X"),
    ),
    "N3": (rule("M AN 1 55", "Address Information"), rule("O AN 1 55", "Address Information")),
    "N4": (
        rule("M AN 2 30", "City Name"),
        rule("O ID 2 2", "State or Province Code"),
        rule("O ID 3 15", "Postal Code"),
        rule("O ID 2 3", "Country Code"),
        rule("O ID 1 2 CY", "Location Qualifier"),
        rule("O AN 1 30", "Location Identifier"),
        rule("O ID 1 3", "Country Subdivision Code"),
    ),
    "DMG": (
        rule("M ID 2 3 D8", "Date Time Period Format Qualifier"),
        rule("M DT 8 8", "Member Birth Date"),
        rule("M ID 1 1 F,M,U", "Gender Code"),
        rule("O ID 1 1 B,D,I,M,R,S,U,W,X", "Marital Status Code"),
        rule(
            "O C",
            "Composite Race or Ethnicity Information",
            rule("O ID 1 1", "Race or Ethnicity Code"),
            rule("O ID 1 3 RET", "Code List Qualifier Code"),
            rule("O AN 1 30", "Industry Code"),
        ),
        rule("O ID 1 2 1,2,3,4,5,6,7", "Citizenship Status Code"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("O ID 1 3 REC", "Code List Qualifier Code"),
        rule("O AN 1 30", "Industry Code"),
    ),
    "HD": (
        rule("M ID 3 3 001,002,021,024,025,026,030,032", "Maintenance Type Code"),
        rule("X"),
        rule(f"M ID 2 3 {_INSURANCE_LINES}", "Insurance Line Code"),
        rule("O AN 1 50", "Plan Coverage Description"),
        rule(f"O ID 3 3 {_COVERAGE_LEVELS}", "Coverage Level Code"),
        rule("X"),
        rule("X"),
        rule("X"),
        rule("O ID 1 1 N,Y", "Late Enrollment Indicator"),
        rule("X"),
        rule("X"),
    ),
    "LX": (rule("M N0 1 6", "Assigned Number"),),
}
LOOP_RULES: dict[tuple[str, str], tuple[Rule, ...]] = {
    ("REF", "header"): _ref("38"),
    ("REF", "2000"): _ref("0F,1L,17,23,3H,4A,6O,ABB,C1,D3,DX,F6,P5,Q4,QQ,ZZ"),
    ("REF", "2300"): _ref("17,1L,9V,CE,E8,M7,PID,QQ,RB,X9,XM,XX1,XX2,ZX,ZZ"),
    ("REF", "2750"): _ref("00,17,18,19,26,3L,6M,9V,9X,GE,LU,PID,XX1,XX2,YY,ZZ"),
    ("DTP", "header"): _dtp("007,090,091,303,382,388"),
    ("DTP", "2000"): _dtp(
        "050,286,296,297,300,301,303,336,337,338,339,340,341,350,351,356,357,383,385,386,393,394,"
        "473,474"
    ),
    ("DTP", "2200"): _dtp("360,361"),
    ("DTP", "2300"): _dtp("300,303,343,348,349,543,695"),
    ("DTP", "2310"): _dtp("348,349"),
    ("DTP", "2320"): _dtp("344,345"),
    ("DTP", "2750"): _dtp("007"),
    ("NM1", "2100A"): _nm1("74,IL", "1", "34,ZZ", rule("X")),
    ("NM1", "2100B"): _nm1("70", "1", "34,ZZ", rule("X")),
    ("NM1", "2310"): _nm1(
        "1X,3D,80,FA,OD,P3,QA,QN,Y2", "1,2", "34,FI,SV,XX", rule("O ID 2 2 25,26,72")
    ),
    ("N1", "1000A"): _n1("P5", "O", "M ID 1 2 24,94,FI"),
    ("N1", "1000B"): _n1("IN", "O", "M ID 1 2 94,FI,XV"),
    ("N1", "1000C"): _n1("BO,TV", "M", "O ID 1 2 94,FI,XV"),
    ("N1", "2750"): _n1("75", "M", "O ID 1 2"),
}
# Every segment the guide allows in an 834's body; anything else is unrecognized.
_SEGMENTS = "BGN REF DTP QTY N1 ACT INS NM1 PER N3 N4 DMG EC ICM AMT HLH LUI DSB HD IDC LX PRV PLA"
KNOWN = frozenset(f"{_SEGMENTS} COB LS LE".split(" "))

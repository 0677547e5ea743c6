"""The 834 in `openhmo x12 ingest`: enrollment maintenance applied through the shell of
`openhmo.enrollment.maintenance`, with the plan map of OPENHMO_834_PLAN_MAP when set."""

from __future__ import annotations

import os
from pathlib import Path

from openhmo.enrollment.maintenance import EnrollmentSets, load_plan_map


def processor() -> EnrollmentSets:
    mapping = os.environ.get("OPENHMO_834_PLAN_MAP")
    return EnrollmentSets(plan_map=load_plan_map(Path(mapping)) if mapping else None)

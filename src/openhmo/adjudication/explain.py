"""A decision's explanation in the member's own language, from the i18n catalogue."""

from __future__ import annotations

import json

from openhmo.i18n import translate


def explanation_text(message_id: str, params_json: str | dict, language: str = "en") -> str:
    """The sentence a member reads for a decision (docs/adjudication.md §4, Explanations)."""
    params = json.loads(params_json) if isinstance(params_json, str) else dict(params_json)
    if message_id == "explain.pended" and "reason" in params:
        params["reason"] = translate(f"pend_reason.{params['reason']}", language)
    for name in ("service", "pcp"):
        if str(params.get(name, "")).startswith(("category.", "explain.")):
            params[name] = translate(params[name], language)
    return translate(message_id, language, **params)

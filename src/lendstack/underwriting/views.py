"""What callers see of a stored decision: the channel's view and a one-line summary.

The audit record holds everything (inputs, every rule result, pinned versions); a channel is
shown the outcome, reasons, offer, its co-lending plan (null when no funding was sought) and
the versions it was decided under, never PII.
"""

from __future__ import annotations

from typing import Any

from lendstack.underwriting.decision import GRANTED


def summary(decision_id: str, record: dict[str, Any]) -> dict[str, Any]:
    d = record["decision"]
    offer = d["offer"]
    return {
        "decision_id": decision_id,
        "outcome": d["outcome"],
        "reasons": [r["code"] for r in d["reasons"]],
        "pd": None if d["score"] is None else d["score"]["pd"],
        "offer_amount": None if offer is None else offer["amount"],
        "apr_irr": None if offer is None else offer["apr_irr"],
    }


def decision_view(decision_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """What a channel sees: the decision and offer, without internals or PII."""
    d = record["decision"]
    return {
        "decision_id": decision_id,
        "outcome": d["outcome"],
        "reasons": [{"code": r["code"], "text": r["text"]} for r in d["reasons"]],
        "offer": d["offer"] if d["outcome"] in GRANTED else None,
        "funding": d.get("funding"),
        "score": d["score"],
        "price": d["price"],
        "limit": d["limit"],
        "bindings": d["bindings"],
        "rule_pack": record["rule_pack"],
        "model": record["model"],
        "application_date": record["application"]["application_date"],
        "channel": record["application"]["channel"],
        "decided_at": record["decided_at"],
    }

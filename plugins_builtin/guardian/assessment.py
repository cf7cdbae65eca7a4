"""What the reviewer answers and what each outcome says to the user and to the agent.

The reviewer model answers one JSON object (:data:`OUTPUT_SCHEMA`, sent as
the request's ``text.format``). :func:`parse_assessment` reads it strictly:
an answer that is not such an object, or whose ``outcome`` is missing or
not ``allow``/``deny``, is a review failure, and a failure denies.
A :class:`Verdict` is the end of one review, whatever happened: what the
``item/autoApprovalReview/completed`` notification carries, the
``guardianWarning`` text, and the text the agent's model gets when the
action is refused (the reference's wording, as observed on the wire).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

__all__ = [
    "OUTPUT_SCHEMA",
    "Assessment",
    "AssessmentError",
    "Verdict",
    "aborted",
    "failed",
    "parse_assessment",
    "timed_out",
    "verdict",
]

RISK_LEVELS = ("low", "medium", "high", "critical")
AUTHORIZATIONS = ("unknown", "low", "medium", "high")
OUTCOMES = ("allow", "deny")

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "risk_level": {"type": "string", "enum": list(RISK_LEVELS)},
        "user_authorization": {"type": "string", "enum": list(AUTHORIZATIONS)},
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "rationale": {"type": "string"},
    },
    "required": ["outcome"],
}

# What the agent's model is told, word for word as the reference tells it.
_REJECTED = (
    "This action was rejected due to unacceptable risk.\nReason: {rationale}\n"
    "The agent must not attempt to achieve the same outcome via workaround, indirect "
    "execution, or policy circumvention. Proceed only with a materially safer alternative, "
    "or if the user explicitly approves the action after being informed of the risk. "
    "Otherwise, stop and request user input."
)
_FAILED = (
    "{rationale}\nThe action was not executed because automatic approval review could not "
    "be completed. This is a review failure, not a determination that the action is unsafe. "
    "Do not bypass the approval check; resolve the error or ask the user for guidance."
)
_TIMED_OUT = (
    "The automatic permission approval review did not finish before its deadline. Do not "
    "assume the action is unsafe based on the timeout alone. You may retry once, or ask the "
    "user for guidance or explicit approval."
)
_TIMEOUT_RATIONALE = "Automatic approval review timed out while evaluating the requested approval."


class AssessmentError(Exception):
    """The reviewer's answer is not a usable assessment (the message says why)."""


@attrs.frozen
class Assessment:
    """One parsed reviewer answer."""

    outcome: str
    risk_level: str
    user_authorization: str
    rationale: str


@attrs.frozen
class Verdict:
    """How one review ended."""

    status: str  # approved | denied | timedOut | aborted
    risk_level: str | None
    user_authorization: str | None
    rationale: str | None
    warning: str | None  # the guardianWarning message (None: no warning)
    model_text: str | None  # what the agent's model gets when refused (None: approved)

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    def review(self) -> dict[str, Any]:
        """The protocol's ``GuardianApprovalReview``."""
        return {
            "status": self.status,
            "riskLevel": self.risk_level,
            "userAuthorization": self.user_authorization,
            "rationale": self.rationale,
        }


def parse_assessment(text: str | None) -> Assessment:
    """The reviewer's JSON answer; tolerates prose around one JSON object.

    Missing optional members get the reference's defaults: risk ``low``
    for allow and ``high`` for deny, authorization ``unknown``.
    """
    if text is None or not text.strip():
        raise AssessmentError("the reviewer answered no assessment")
    value = _json_object(text)
    outcome = value.get("outcome")
    if outcome not in OUTCOMES:
        raise AssessmentError(f"the assessment's outcome is not allow or deny: {outcome!r}")
    risk = value.get("risk_level")
    if risk is None:
        risk = "low" if outcome == "allow" else "high"
    elif risk not in RISK_LEVELS:
        raise AssessmentError(f"the assessment's risk_level is not a known level: {risk!r}")
    authorization = value.get("user_authorization")
    if authorization is None:
        authorization = "unknown"
    elif authorization not in AUTHORIZATIONS:
        raise AssessmentError(
            f"the assessment's user_authorization is not a known level: {authorization!r}"
        )
    rationale = value.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        rationale = (
            "The reviewer allowed the action without giving a reason."
            if outcome == "allow"
            else "The reviewer denied the action without giving a reason."
        )
    return Assessment(outcome, risk, authorization, rationale)


def _json_object(text: str) -> dict[str, Any]:
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise AssessmentError("guardian assessment was not valid JSON")


def verdict(assessment: Assessment) -> Verdict:
    """The verdict of a review that produced an assessment."""
    approved = assessment.outcome == "allow"
    word = "approved" if approved else "denied"
    warning = (
        f"Automatic approval review {word} (risk: {assessment.risk_level}, "
        f"authorization: {assessment.user_authorization}): {assessment.rationale}"
    )
    return Verdict(
        status=word,
        risk_level=assessment.risk_level,
        user_authorization=assessment.user_authorization,
        rationale=assessment.rationale,
        warning=warning,
        model_text=None if approved else _REJECTED.format(rationale=assessment.rationale),
    )


def failed(why: str) -> Verdict:
    """A review that could not complete (reviewer error, unreadable answer): denied."""
    rationale = f"Automatic approval review failed: {why}"
    return Verdict(
        status="denied",
        risk_level=None,
        user_authorization=None,
        rationale=rationale,
        warning=rationale,
        model_text=_FAILED.format(rationale=rationale),
    )


def timed_out() -> Verdict:
    """A review that did not finish in time: refused, and said to be a timeout."""
    return Verdict(
        status="timedOut",
        risk_level=None,
        user_authorization=None,
        rationale=_TIMEOUT_RATIONALE,
        warning=_TIMEOUT_RATIONALE,
        model_text=_TIMED_OUT,
    )


def aborted() -> Verdict:
    """A review cut short because its turn ended (interrupt)."""
    return Verdict("aborted", None, None, None, None, None)

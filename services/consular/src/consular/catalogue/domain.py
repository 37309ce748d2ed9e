"""The service catalogue's rules, in plain Python: what a service type is, how an
application's answers are checked against its form, who is eligible, which embassy
processes it.

A service type is data the ministry edits. Each edit is a new version; an application
keeps the version it was made under (its form, fee, eligibility and target days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from diaspora_service.text import SingleLine, control_character

FieldType = Literal["text", "long_text", "date", "number", "boolean", "choice", "email", "country"]
# Who may apply (checked at submission):
# - verified_identity_in_jurisdiction: a registry member whose identity an officer verified,
#   living in the jurisdiction of the embassy that processes the application;
# - registered_member: any registry member;
# - none: anyone with an account (e-visa: foreign visitors have no registry record).
Eligibility = Literal["verified_identity_in_jurisdiction", "registered_member", "none"]
ProcessingRule = Literal["applicant_embassy", "fixed_embassy"]
CODE = r"^[a-z][a-z0-9_]{1,39}$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
TEXT_MAX = 1000
LONG_TEXT_MAX = 8000


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Labels(_Frozen):
    fr: SingleLine = Field(min_length=1, max_length=300)
    en: SingleLine = Field(min_length=1, max_length=300)


class FormField(_Frozen):
    name: str = Field(pattern=CODE, description="The answer's key, e.g. passport_number.")
    type: FieldType
    required: bool = True
    labels: Labels
    options: list[SingleLine] = Field(
        default_factory=list, max_length=50, description="The choices of a `choice` field."
    )

    @model_validator(mode="after")
    def _choices(self) -> FormField:
        if self.type == "choice" and not self.options:
            raise ValueError(f"field {self.name}: a choice field needs options")
        if self.type != "choice" and self.options:
            raise ValueError(f"field {self.name}: only a choice field has options")
        return self


class DocumentRequirement(_Frozen):
    code: str = Field(pattern=CODE, examples=["passport_photo"])
    labels: Labels
    required: bool = True


class Fee(_Frozen):
    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR, XOF.")


class Processing(_Frozen):
    rule: ProcessingRule = Field(
        description=(
            "applicant_embassy: the embassy of the applicant's jurisdiction; fixed_embassy: "
            "always `embassy_id`."
        )
    )
    embassy_id: SingleLine | None = Field(None, max_length=60)

    @model_validator(mode="after")
    def _fixed_has_embassy(self) -> Processing:
        if (self.rule == "fixed_embassy") != (self.embassy_id is not None):
            raise ValueError("embassy_id is given exactly when the rule is fixed_embassy")
        return self


class ServiceTypeDefinition(_Frozen):
    """One version of a service type, as the ministry writes it."""

    labels: Labels
    descriptions: Labels | None = None
    form_fields: list[FormField] = Field(max_length=60)
    required_documents: list[DocumentRequirement] = Field(default_factory=list, max_length=30)
    eligibility: Eligibility
    fee: Fee
    processing: Processing
    target_processing_days: int = Field(ge=1, le=365)

    @model_validator(mode="after")
    def _unique_names(self) -> ServiceTypeDefinition:
        names = [f.name for f in self.form_fields]
        if len(names) != len(set(names)):
            raise ValueError("form field names must be unique")
        codes = [d.code for d in self.required_documents]
        if len(codes) != len(set(codes)):
            raise ValueError("document codes must be unique")
        return self


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


def _check_value(spec: FormField, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec`` (None: it fits)."""
    kind = spec.type
    if kind in ("text", "long_text"):
        limit = TEXT_MAX if kind == "text" else LONG_TEXT_MAX
        if not isinstance(value, str):
            return "must be text"
        if len(value) > limit:
            return f"must be at most {limit} characters"
        # Free text never carries control characters (a line feed and a tab only in
        # long text): answers end up in mail and documents (docs/security.md).
        found = control_character(value, multiline=kind == "long_text")
        if found is not None:
            return f"must not contain control characters ({found})"
        return None
    if kind in ("email", "country", "choice", "date") and isinstance(value, str):
        found = control_character(value)
        if found is not None:
            return f"must not contain control characters ({found})"
    if kind == "date":
        if not isinstance(value, str):
            return "must be a date (YYYY-MM-DD)"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "must be a date (YYYY-MM-DD)"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "choice":
        if value not in spec.options:
            return "must be one of " + ", ".join(spec.options)
        return None
    if kind == "email":
        ok = isinstance(value, str) and len(value) <= 254 and _EMAIL.fullmatch(value)
        return None if ok else "must be an email address"
    ok = isinstance(value, str) and _COUNTRY.fullmatch(value)
    return None if ok else "must be an ISO 3166-1 alpha-2 country code (e.g. FR)"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_answers(
    fields: list[FormField], answers: dict[str, Any], *, complete: bool
) -> list[FieldError]:
    """Every problem of ``answers`` against the form: unknown fields, values of the wrong
    type and, when ``complete`` (submission), required fields left empty."""
    by_name = {f.name: f for f in fields}
    errors = [
        FieldError(f"answers.{name}", "is not a field of this form", "unknown_field")
        for name in sorted(answers)
        if name not in by_name
    ]
    for spec in fields:
        value = answers.get(spec.name)
        if _blank(value):
            if complete and spec.required:
                errors.append(FieldError(f"answers.{spec.name}", "is required", "missing"))
            continue
        problem = _check_value(spec, value)
        if problem is not None:
            errors.append(FieldError(f"answers.{spec.name}", problem, "invalid"))
    return errors


@dataclass(frozen=True)
class ApplicantFacts:
    """What eligibility looks at (None for a caller without a registry record)."""

    registered: bool
    identity_verified: bool
    embassy_id: str | None
    # The only recorded check is of a document that has since expired.
    identity_expired: bool = False


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


def eligibility_refusal(
    rule: Eligibility, applicant: ApplicantFacts, processing_embassy: str | None
) -> Refusal | None:
    """Why the applicant may not apply under ``rule`` (None: eligible)."""
    if rule == "none":
        return None
    if not applicant.registered:
        return Refusal(
            "not_registered",
            "This service is for members of the diaspora registry: register first "
            "(or wait a minute if you just did).",
        )
    if rule == "registered_member":
        return None
    if applicant.identity_verified and applicant.identity_expired:
        return Refusal(
            "identity_expired",
            "Your identity was checked against a document that has since expired: an "
            "officer of your embassy must check a valid document before you can apply.",
        )
    if not applicant.identity_verified:
        return Refusal(
            "identity_not_verified",
            "This service needs a verified identity: an officer of your embassy must first "
            "check your identity document (in person or from an upload).",
        )
    if applicant.embassy_id is None or applicant.embassy_id != processing_embassy:
        return Refusal(
            "outside_jurisdiction",
            "This service is given by the embassy of your jurisdiction; your registration "
            "does not place you there.",
        )
    return None


def processing_embassy(processing: Processing, applicant_embassy: str | None) -> str | None:
    """The embassy that processes an application under ``processing``."""
    if processing.rule == "fixed_embassy":
        return processing.embassy_id
    return applicant_embassy

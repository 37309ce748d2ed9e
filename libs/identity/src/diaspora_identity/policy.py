"""Roles and scopes as data: one policy table, one enforcement path.

The table (``data/policy.yaml``) says, per resource and action, which roles may
act and within which scope, and which fields each of them receives:

    resources:
      member:
        personal_fields: [id, given_name, family_name, ...]
        scope_attributes: {own_subject: owner_subject, own_member: id, embassy: embassy_id}
        actions:
          read:
            citizen: {scope: own}
            embassy_officer: {scope: embassy}
            analyst: ...            # absent: the function is refused (403)

Scopes (rows a grant reaches):
- ``all``: every record;
- ``own``: the caller's own records (record's subject = token ``sub``, or record's
  member id = token ``member_id``);
- ``embassy``: records in the jurisdiction of one of the caller's embassies;
- ``partner``: records assigned to the caller's partner organisation.

Field rules (what a grant shows of each row): ``all``, or ``non_personal``: the
resource's ``personal_fields`` removed (what analysts get).

Enforcement, the same for get, list, search and export:
1. :meth:`Policy.decide` refuses a role with no grant for the action (403:
   function-level); otherwise it returns a :class:`Decision`.
2. ``Decision.where(columns)`` is the SQL condition every query of the action
   adds, so out-of-scope rows are never read: an object outside the scope is
   simply not found (404, existence not revealed).
3. ``Decision.project(row)`` keeps only the fields the grants that reach this
   row allow.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, false, literal, or_, true

from diaspora_identity.principal import Principal, Role


class Scope(enum.StrEnum):
    ALL = "all"
    OWN = "own"
    EMBASSY = "embassy"
    PARTNER = "partner"


class FieldRule(enum.StrEnum):
    ALL = "all"
    NON_PERSONAL = "non_personal"


class Forbidden(Exception):
    """The caller's roles grant nothing for this action (function-level: 403)."""

    def __init__(self, resource: str, action: str) -> None:
        super().__init__(f"your roles do not allow {action} on {resource}")
        self.resource = resource
        self.action = action


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope
    fields: FieldRule = FieldRule.ALL
    # Only tokens issued to one of these OAuth clients (``azp``/``client_id``) get the
    # grant; None: any client. Names the one external system a ``service`` grant is for.
    clients: frozenset[str] | None = None


class ScopeAttributes(BaseModel):
    """Which record attribute each scope compares with the caller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    own_subject: str | None = None
    own_member: str | None = None
    embassy: str | None = None
    partner: str | None = None


class ResourcePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    personal_fields: frozenset[str] = Field(default_factory=frozenset)
    scope_attributes: ScopeAttributes = Field(default_factory=ScopeAttributes)
    actions: dict[str, dict[Role, Grant]]

    @model_validator(mode="after")
    def _scopes_have_attributes(self) -> ResourcePolicy:
        attrs = self.scope_attributes
        needs = {
            Scope.OWN: attrs.own_subject or attrs.own_member,
            Scope.EMBASSY: attrs.embassy,
            Scope.PARTNER: attrs.partner,
        }
        for action, grants in self.actions.items():
            for role, grant in grants.items():
                if grant.scope in needs and not needs[grant.scope]:
                    raise ValueError(
                        f"{action}/{role}: scope {grant.scope} needs its attribute "
                        "in scope_attributes"
                    )
        return self


class PolicyTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resources: dict[str, ResourcePolicy]


@dataclass(frozen=True)
class RoleGrant:
    role: Role
    grant: Grant


@dataclass(frozen=True)
class Decision:
    """What one principal may do for one action on one resource."""

    resource: str
    action: str
    principal: Principal
    policy: ResourcePolicy
    grants: tuple[RoleGrant, ...]

    @property
    def roles(self) -> list[str]:
        return sorted(g.role.value for g in self.grants)

    # -- rows --------------------------------------------------------------

    def _grant_condition(self, grant: Grant, columns: Mapping[str, Any]) -> ColumnElement[bool]:
        attrs = self.policy.scope_attributes
        p = self.principal
        if grant.scope is Scope.ALL:
            return true()
        if grant.scope is Scope.OWN:
            parts: list[ColumnElement[bool]] = []
            if attrs.own_subject and attrs.own_subject in columns:
                parts.append(columns[attrs.own_subject] == literal(p.subject))
            if attrs.own_member and p.member_id is not None and attrs.own_member in columns:
                parts.append(columns[attrs.own_member] == literal(p.member_id))
            return or_(*parts) if parts else false()
        if grant.scope is Scope.EMBASSY:
            assert attrs.embassy is not None
            if not p.embassies:
                return false()
            return columns[attrs.embassy].in_(sorted(p.embassies))  # type: ignore[no-any-return]
        assert attrs.partner is not None
        if p.partner_org is None:
            return false()
        return columns[attrs.partner] == literal(p.partner_org)  # type: ignore[no-any-return]

    def where(self, columns: Mapping[str, Any]) -> ColumnElement[bool]:
        """SQL condition selecting exactly the rows this decision reaches.

        ``columns`` maps the policy's attribute names to column expressions.
        """
        return or_(*(self._grant_condition(g.grant, columns) for g in self.grants))

    def _grant_reaches(self, grant: Grant, record: Mapping[str, Any]) -> bool:
        attrs = self.policy.scope_attributes
        p = self.principal
        if grant.scope is Scope.ALL:
            return True
        if grant.scope is Scope.OWN:
            by_subject = bool(attrs.own_subject) and record.get(attrs.own_subject or "") == (
                p.subject
            )
            by_member = (
                attrs.own_member is not None
                and p.member_id is not None
                and _same(record.get(attrs.own_member), p.member_id)
            )
            return by_subject or by_member
        if grant.scope is Scope.EMBASSY:
            return record.get(attrs.embassy or "") in p.embassies
        return p.partner_org is not None and record.get(attrs.partner or "") == p.partner_org

    def permits(self, record: Mapping[str, Any]) -> bool:
        """Whether a (candidate) record lies within this decision's scope."""
        return any(self._grant_reaches(g.grant, record) for g in self.grants)

    def reaching(self, record: Mapping[str, Any]) -> list[RoleGrant]:
        """The grants (with their roles) that reach this record."""
        return [g for g in self.grants if self._grant_reaches(g.grant, record)]

    def is_own(self, record: Mapping[str, Any]) -> bool:
        """Whether the record is the caller's own (no audit entry needed for it)."""
        return self._grant_reaches(Grant(scope=Scope.OWN), record) if self._has_own_attrs else False

    @property
    def _has_own_attrs(self) -> bool:
        attrs = self.policy.scope_attributes
        return bool(attrs.own_subject or attrs.own_member)

    # -- fields ------------------------------------------------------------

    def visible_fields(self, record: Mapping[str, Any], fields: Sequence[str]) -> list[str]:
        """The fields of ``record`` the caller may receive (union over the grants reaching it)."""
        rules = {g.grant.fields for g in self.grants if self._grant_reaches(g.grant, record)}
        if FieldRule.ALL in rules:
            return list(fields)
        if FieldRule.NON_PERSONAL in rules:
            return [f for f in fields if f not in self.policy.personal_fields]
        return []

    def project(self, record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
        return {f: record[f] for f in self.visible_fields(record, fields)}

    def output_fields(self, fields: Sequence[str]) -> list[str]:
        """Columns of a tabular export: the widest set any of the grants shows."""
        rules = {g.grant.fields for g in self.grants}
        if FieldRule.ALL in rules:
            return list(fields)
        return [f for f in fields if f not in self.policy.personal_fields]


def _same(a: Any, b: Any) -> bool:
    return a is not None and str(a) == str(b)


class Policy:
    """The platform's policy table."""

    def __init__(self, table: PolicyTable) -> None:
        self.table = table

    @classmethod
    def from_yaml(cls, text: str) -> Policy:
        return cls(PolicyTable.model_validate(yaml.safe_load(text)))

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        return cls.from_yaml(path.read_text(encoding="utf-8"))

    def resource(self, name: str) -> ResourcePolicy:
        return self.table.resources[name]

    def decide(self, principal: Principal, resource: str, action: str) -> Decision:
        """The caller's grants for ``action`` on ``resource``; raises Forbidden if none."""
        policy = self.table.resources[resource]
        if action not in policy.actions:
            raise KeyError(f"{resource} has no action {action!r} in the policy table")
        by_role = policy.actions[action]
        grants = tuple(
            RoleGrant(role, by_role[role])
            for role in sorted(principal.roles)
            if role in by_role and _client_fits(by_role[role], principal)
        )
        if not grants:
            raise Forbidden(resource, action)
        return Decision(resource, action, principal, policy, grants)

    def allowed(self, principal: Principal, resource: str, action: str) -> bool:
        try:
            self.decide(principal, resource, action)
        except Forbidden:
            return False
        return True


def _client_fits(grant: Grant, principal: Principal) -> bool:
    """A grant naming clients is only for tokens issued to one of them."""
    return grant.clients is None or (
        principal.client_id is not None and principal.client_id in grant.clients
    )


@cache
def default_policy() -> Policy:
    """The platform's policy table, shipped with this library (``data/policy.yaml``)."""
    text = resources.files("diaspora_identity").joinpath("data/policy.yaml").read_text("utf-8")
    return Policy.from_yaml(text)

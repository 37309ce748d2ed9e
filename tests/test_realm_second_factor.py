"""The identity provider's realm requires a second factor (OTP) for every staff role
(issue 15, item 10), and not for citizens, on every way a person logs in.

Reads deploy/compose/keycloak/diaspora-realm.json the way Keycloak runs it: the realm's
browser flow (and any per-client override), its executions and sub-flows, the
"Condition - user role" configurations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REALM = ROOT / "deploy" / "compose" / "keycloak" / "diaspora-realm.json"
STAFF = {
    "embassy_officer",
    "ministry_coordinator",
    "case_worker",
    "partner_caseworker",
    "analyst",
    "admin",
}


def realm() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REALM.read_text())
    return data


def flows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {flow["alias"]: flow for flow in data.get("authenticationFlows", [])}


def configs(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["alias"]: c["config"] for c in data.get("authenticatorConfig", [])}


def roles_requiring_otp(data: dict[str, Any], flow_alias: str) -> set[str] | None:
    """The roles for which the flow always asks for an OTP after the password; None when
    it asks everyone (an unconditional, required OTP)."""
    by_alias, config = flows(data), configs(data)
    roles: set[str] = set()

    def walk(alias: str) -> bool:
        """True if this flow requires OTP for everyone who passes it."""
        executions = by_alias[alias]["authenticationExecutions"]
        unconditional = False
        for execution in executions:
            requirement = execution["requirement"]
            if execution.get("authenticatorFlow"):
                child = execution["flowAlias"]
                if requirement == "CONDITIONAL":
                    inner = by_alias[child]["authenticationExecutions"]
                    conditions = [
                        e for e in inner if e.get("authenticator") == "conditional-user-role"
                    ]
                    otp = [
                        e
                        for e in inner
                        if e.get("authenticator") in ("auth-otp-form", "webauthn-authenticator")
                        and e["requirement"] == "REQUIRED"
                    ]
                    if len(conditions) == 1 and otp:
                        role_config = config[conditions[0]["authenticatorConfig"]]
                        assert role_config.get("negate", "false") == "false"
                        roles.add(role_config["condUserRole"])
                elif requirement in ("REQUIRED", "ALTERNATIVE"):
                    unconditional |= walk(child) and requirement == "REQUIRED"
            elif execution.get("authenticator") == "auth-otp-form" and requirement == "REQUIRED":
                unconditional = True
        return unconditional

    return None if walk(flow_alias) else roles


def test_the_browser_flow_requires_otp_for_every_staff_role_and_not_for_citizens() -> None:
    data = realm()
    browser = data.get("browserFlow")
    assert browser in flows(data), "the realm binds its own browser flow"
    required = roles_requiring_otp(data, browser)
    assert required is not None, "citizens must not be asked for an OTP"
    assert required == STAFF
    assert "citizen" not in required
    # The password form is in the same sub-flow as the role conditions: the conditions see
    # the user the password identified (no path reaches a token with the password only).
    forms = next(
        flows(data)[e["flowAlias"]]
        for e in flows(data)[browser]["authenticationExecutions"]
        if e.get("authenticatorFlow")
    )
    authenticators = [e.get("authenticator") for e in forms["authenticationExecutions"]]
    assert authenticators[0] == "auth-username-password-form"


def test_no_client_escapes_the_browser_flow() -> None:
    data = realm()
    for client in data["clients"]:
        # The password grant would skip the browser flow (and its OTP).
        assert client.get("directAccessGrantsEnabled") is False, client["clientId"]
        override = client.get("authenticationFlowBindingOverrides") or {}
        assert not override.get("browser") or override["browser"] == data["browserFlow"]


def test_staff_are_made_to_configure_otp_and_the_policy_is_time_based() -> None:
    data = realm()
    assert data["otpPolicyType"] == "totp"
    assert int(data["otpPolicyDigits"]) >= 6
    # A staff member without an OTP device is made to configure one at the next login
    # (the required OTP form sets CONFIGURE_TOTP): the realm keeps Keycloak's default
    # required actions, or lists CONFIGURE_TOTP enabled.
    if "requiredActions" in data:
        actions = {a["alias"]: a for a in data["requiredActions"]}
        assert actions["CONFIGURE_TOTP"]["enabled"] is True
    # The staff groups carry the staff roles (a role given another way is still covered:
    # the condition checks the user's effective roles).
    group_roles = {role for group in data["groups"] for role in group.get("realmRoles", [])}
    assert group_roles >= STAFF

"""Templates render in a sandbox: the admin's template API cannot run code (issue 15).

An administrator's preview with the subject below ran ``id`` on the server: templates
rendered in an unsandboxed Jinja2 environment whose globals (``cycler``...) reach
``os``. Now every part renders in an immutable sandbox without globals, with only the
template's declared variables and a short list of filters; anything else is a 422
problem naming it, at preview and at save.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from uuid_utils.compat import uuid7

from diaspora_identity.testing import LocalIssuer, admin
from notifications.templates.domain import (
    ALLOWED_FILTERS,
    JINJA_GLOBALS,
    TemplateInvalid,
    TemplateVersion,
    _compiled,
    check,
    render_version,
)

pytestmark = pytest.mark.integration

PAYLOAD = '{{ cycler.__init__.__globals__.os.popen("id").read() }}'


def _draft(subject: str, body: str = "Bonjour {{ given_name }}") -> dict[str, object]:
    return {"subject": subject, "body": body, "sms": "{{ given_name }}"}


async def test_the_reported_payload_is_refused_at_preview_and_save_and_runs_nothing(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, tmp_path: Path
) -> None:
    root = identity_provider.headers(admin())
    marker = tmp_path / "ran"
    payloads = [
        PAYLOAD,
        # The same with a visible side effect: a file would appear if anything ran.
        PAYLOAD.replace('"id"', f'"touch {marker}"'),
    ]
    for subject in payloads:
        preview = await client.post(
            "/templates/member_welcome/fr/preview", json={"draft": _draft(subject)}, headers=root
        )
        assert preview.status_code == 422, preview.text
        assert preview.headers["content-type"].startswith("application/problem+json")
        assert "cycler" in preview.text
        assert "uid=" not in preview.text
        saved = await client.put("/templates/member_welcome/fr", json=_draft(subject), headers=root)
        assert saved.status_code == 422, saved.text
        assert "cycler" in saved.text
    assert not marker.exists()
    # Nothing was saved: the shipped version 1 is still the latest.
    latest = (await client.get("/templates/member_welcome/fr", headers=root)).json()
    assert latest["version"] == 1


@pytest.mark.parametrize(
    ("source", "offending"),
    [
        ("{{ joiner() }}", "joiner"),
        ("{{ namespace(a=1) }}", "namespace"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "range"),
        ("{{ lipsum() }}", "lipsum"),
        ("{{ dict(a=1) }}", "dict"),
        ("{{ given_name.__class__ }}", "__class__"),
        ("{{ given_name.upper() }}", "call"),
        ("{{ given_name | attr('__class__') }}", "attr"),
        ("{{ given_name | map('upper') | list }}", "map"),
        ("{% if given_name is callable %}x{% endif %}", "callable"),
        ("{% include 'x' %}", "include"),
        ("{% import 'x' as y %}", "import"),
        ("{{ self }}", "self"),
    ],
)
async def test_globals_calls_unlisted_filters_and_private_attributes_are_refused_by_name(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, source: str, offending: str
) -> None:
    root = identity_provider.headers(admin())
    preview = await client.post(
        "/templates/member_welcome/fr/preview", json={"draft": _draft(source)}, headers=root
    )
    assert preview.status_code == 422, preview.text
    assert offending in preview.text
    saved = await client.put("/templates/member_welcome/fr", json=_draft(source), headers=root)
    assert saved.status_code == 422, saved.text
    assert offending in saved.text


async def test_the_allowed_filters_still_render(
    client: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    root = identity_provider.headers(admin())
    subject = (
        "{{ given_name | upper }} {{ family_name | lower | title }} "
        "{{ registered_at | format_date('long') }} {{ nickname | default('-') }}"
        " {{ given_name | length }}"
    )
    preview = await client.post(
        "/templates/member_welcome/fr/preview",
        json={"draft": _draft(subject), "variables": {"given_name": "Ama"}},
        headers=root,
    )
    # ``nickname`` is not declared: even behind ``default`` it is refused.
    assert preview.status_code == 422
    assert "nickname" in preview.text
    subject = subject.replace(" {{ nickname | default('-') }}", "")
    preview = await client.post(
        "/templates/member_welcome/fr/preview",
        json={"draft": _draft(subject), "variables": {"given_name": "Ama"}},
        headers=root,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["subject"] == "AMA Mensah 27 avril 2026 3"


def test_the_checker_names_every_jinja_global_and_allows_only_the_listed_filters() -> None:
    assert {"cycler", "joiner", "namespace", "range", "lipsum", "dict"} <= JINJA_GLOBALS
    assert {"escape", "upper", "lower", "title", "default", "length", "join"} <= ALLOWED_FILTERS
    assert not ALLOWED_FILTERS & {"attr", "map", "select", "selectattr", "format", "tojson"}
    for name in sorted(JINJA_GLOBALS):
        with pytest.raises(TemplateInvalid, match=name):
            check(
                {"subject": f"{{{{ {name} }}}}", "body": "", "sms": ""},
                # Declaring the name does not make the global usable either.
                {name: "x"},
                category_name="account",
            )


def test_previewed_drafts_do_not_pile_up_compiled_templates() -> None:
    # Each draft preview is a version with a new id: the same text is compiled once.
    draft = TemplateVersion(
        id=uuid7(),
        key="member_welcome",
        language="fr",
        version=0,
        category="account",
        subject="Bonjour {{ given_name }}",
        body="Bienvenue, {{ given_name }}.",
        sms="Bienvenue",
        variables={"given_name": "Ama"},
        active=False,
    )
    render_version(draft, {"given_name": "Ama"})
    cached = _compiled.cache_info().currsize
    for _ in range(5):
        again = dataclasses.replace(draft, id=uuid7())
        assert render_version(again, {"given_name": "Kofi"}).subject == "Bonjour Kofi"
    assert _compiled.cache_info().currsize == cached

"""Message templates per event and language (French first, English second).

Rendered with Jinja2 in strict mode: a missing variable is an error, never an
empty hole in a message sent to a citizen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, StrictUndefined

_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701 - plain-text mail

FALLBACK_ORDER = ("fr", "en")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    language: str


_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("member_welcome", "fr"): (
        "Bienvenue dans le registre de la diaspora togolaise, {{ given_name }}",
        """Bonjour {{ given_name }} {{ family_name }},

Votre inscription au registre des Togolais de l'extérieur est enregistrée.
Référence de votre dossier : {{ member_id }}

Vous pouvez à tout moment consulter, corriger ou supprimer vos données.

Le Ministère chargé des Togolais de l'extérieur

--
Welcome to the Togolese diaspora registry. (English below on request.)
""",
    ),
    ("member_welcome", "en"): (
        "Welcome to the Togolese diaspora registry, {{ given_name }}",
        """Hello {{ given_name }} {{ family_name }},

Your registration with the registry of Togolese abroad is recorded.
Your file reference: {{ member_id }}

You may see, correct or erase your data at any time.

The Ministry for Togolese Abroad

--
Bienvenue dans le registre de la diaspora togolaise.
""",
    ),
}


def render(template: str, language: str, variables: dict[str, Any]) -> Rendered:
    """Render in ``language``, falling back along FALLBACK_ORDER."""
    for candidate in (language, *FALLBACK_ORDER):
        found = _TEMPLATES.get((template, candidate))
        if found:
            subject, body = found
            return Rendered(
                subject=_env.from_string(subject).render(variables),
                body=_env.from_string(body).render(variables),
                language=candidate,
            )
    raise LookupError(f"no template {template!r} in any language")

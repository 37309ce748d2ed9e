"""Message templates per event type and language, versioned in the database.

Rendered with Jinja2 in strict mode (a missing variable is an error, never an
empty hole in a message sent to a citizen) and Babel for dates and numbers in
the person's locale. Every template declares its variables (name -> sample
value); saving a version that uses an undeclared variable, or that does not
render with the samples, is refused at save time, so it cannot fail at send time.

Templates are written by administrators and rendered on the servers, so they are
code from a less trusted source (issue 15: a preview ran ``id`` through
``cycler.__init__.__globals__.os``). Every part, of previews and of real sends, renders
in Jinja2's ``ImmutableSandboxedEnvironment`` with no globals at all, and a template
may only use (checked on its syntax tree before anything renders, at save and preview):

- its declared variables (plus ``locale`` and ``timezone``); Jinja's default globals
  (``cycler``, ``joiner``, ``namespace``, ``range``, ``lipsum``, ``dict``) are refused
  even when declared;
- the filters of ``ALLOWED_FILTERS`` and the tests of ``ALLOWED_TESTS``;
- no call (``x()``, ``x.method()``), no attribute or item whose name starts with ``_``,
  no ``include``/``import``/``extends``/``macro``/``call``/``set``/``with`` blocks.

Anything else is a ``TemplateInvalid`` naming it (a 422 problem over HTTP). An ``html``
part, if one is added, renders with autoescape (``environment_for``); the text parts
(subject, body, SMS) are plain text and are not HTML-escaped.

The templates shipped in ``files/`` are seeded as version 1 (``service.seed_missing``);
reading and saving versions is ``service.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
import yaml  # type: ignore[import-untyped,unused-ignore]
from babel import Locale, dates, numbers
from jinja2 import Environment, StrictUndefined, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notifications.preferences.domain import category

FALLBACK_ORDER = ("fr", "en")
LANGUAGES = ("fr", "en")
# Always given to a template by the renderer (the filters read them).
BUILTIN_VARIABLES = frozenset({"locale", "timezone"})
PARTS = ("subject", "body", "sms")
# Templates the service fills from events: only these variables exist at send time,
# so a version declaring any other is refused at save time.
EVENT_VARIABLES: dict[str, frozenset[str]] = {
    "member_welcome": frozenset({"given_name", "family_name", "member_id", "registered_at"}),
    "member_profile_reminder": frozenset(
        {"given_name", "family_name", "member_id", "last_confirmed_at"}
    ),
    "member_identity_verified": frozenset(
        {"given_name", "family_name", "member_id", "level", "verified_at", "expires_on"}
    ),
    "match_proposed": frozenset(
        {
            "given_name",
            "family_name",
            "proposal_id",
            "need_title",
            "need_type",
            "institution",
            "region",
            "starts_on",
            "ends_on",
            "respond_by",
        }
    ),
    "mission_agreed": frozenset(
        {
            "given_name",
            "family_name",
            "mission_id",
            "need_type",
            "region",
            "starts_on",
            "ends_on",
        }
    ),
    "contact_verification_email": frozenset(
        {"given_name", "family_name", "link", "expires_in_hours"}
    ),
    "contact_verification_sms": frozenset(
        {"given_name", "family_name", "code", "expires_in_minutes"}
    ),
    "interest_expressed": frozenset(
        {"given_name", "family_name", "project_id", "project_title", "organisation", "message"}
    ),
    # notifications.advisories: no names (awareness subscribers give none).
    "advisory_published": frozenset(
        {"country", "country_name", "level", "title", "text", "unsubscribe_link"}
    ),
    "subscriber_confirmation": frozenset({"link", "expires_in_hours"}),
}


class TemplateInvalid(ValueError):
    """A template version that cannot be saved; ``errors`` says why, per part."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['part']}: {e['message']}" for e in errors))
        self.errors = errors


class TemplateNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sms: str
    language: str
    version: int = 0


@dataclass(frozen=True)
class TemplateVersion:
    id: UUID
    key: str
    language: str
    version: int
    category: str
    subject: str
    body: str
    sms: str
    variables: dict[str, Any]
    active: bool

    @classmethod
    def of(cls, row: Any) -> TemplateVersion:
        return cls(
            id=row.id,
            key=row.key,
            language=row.language,
            version=row.version,
            category=row.category,
            subject=row.subject,
            body=row.body,
            sms=row.sms,
            variables=dict(row.variables),
            active=row.active,
        )


# -- Babel filters -----------------------------------------------------------------


def _as_datetime(value: Any) -> datetime | date:
    if isinstance(value, datetime | date):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return date.fromisoformat(text)


@pass_context
def _format_date(context: Context, value: Any, format: str = "medium") -> str:
    moment = _as_datetime(value)
    if isinstance(moment, datetime):
        zone = context.get("timezone") or "UTC"
        moment = moment.astimezone(dates.get_timezone(zone)).date() if moment.tzinfo else moment
    return dates.format_date(moment, format=format, locale=context.get("locale", "fr"))


@pass_context
def _format_datetime(context: Context, value: Any, format: str = "medium") -> str:
    moment = _as_datetime(value)
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    zone = dates.get_timezone(context.get("timezone") or "UTC")
    return dates.format_datetime(moment, format=format, tzinfo=zone, locale=context["locale"])


@pass_context
def _format_number(context: Context, value: Any) -> str:
    return numbers.format_decimal(Decimal(str(value)), locale=context.get("locale", "fr"))


@pass_context
def _format_currency(context: Context, value: Any, currency: str = "XOF") -> str:
    return numbers.format_currency(
        Decimal(str(value)), currency, locale=context.get("locale", "fr")
    )


# What a template may use beyond its declared variables (see the module's docstring).
ALLOWED_FILTERS = frozenset(
    {
        "escape",
        "e",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "default",
        "d",
        "length",
        "join",
        "format_date",
        "format_datetime",
        "format_number",
        "format_currency",
    }
)
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "number", "string", "eq", "ne"})
# Jinja's default globals: never available to a template, even if declared as a variable.
JINJA_GLOBALS = frozenset(ImmutableSandboxedEnvironment().globals) | frozenset(
    {"cycler", "joiner", "namespace", "range", "lipsum", "dict", "self", "caller"}
)
# Statements a message has no use for: they reach other templates or define code.
_FORBIDDEN_NODES: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
    nodes.Macro: "macro",
    nodes.CallBlock: "call block",
    nodes.Call: "call",
    nodes.Assign: "set",
    nodes.AssignBlock: "set",
    nodes.With: "with",
    nodes.FilterBlock: "filter block",
    nodes.Block: "block",
}


def _environment(*, html: bool) -> Environment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
    )
    env.globals.clear()
    builtin = {name: env.filters[name] for name in ALLOWED_FILTERS if name in env.filters}
    env.filters.clear()
    env.filters.update(
        builtin,
        format_date=_format_date,
        format_datetime=_format_datetime,
        format_number=_format_number,
        format_currency=_format_currency,
    )
    tests = {name: env.tests[name] for name in ALLOWED_TESTS}
    env.tests.clear()
    env.tests.update(tests)
    return env


_env = _environment(html=False)
_html_env = _environment(html=True)


def environment_for(part: str) -> Environment:
    """The sandbox a part renders in: autoescaping for HTML, plain for text and SMS."""
    return _html_env if part == "html" else _env


def forbidden_names(ast: nodes.Template, declared: set[str]) -> list[str]:
    """What the template uses that it may not: globals, undeclared variables, filters
    and tests outside the lists, calls, private attributes, statements (sorted, once)."""
    found: set[str] = set()
    for node in ast.find_all(nodes.Node):
        kind = _FORBIDDEN_NODES.get(type(node))
        if kind is not None:
            found.add(kind)
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in JINJA_GLOBALS:
            found.add(node.name)
        elif isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            found.add(f"filter {node.name}")
        elif isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            found.add(f"test {node.name}")
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            found.add(node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            found.add(node.arg.value)
    if found:  # (the compiler behind find_undeclared_variables stops at unknown filters)
        return sorted(found)
    undeclared = meta.find_undeclared_variables(ast) - declared - JINJA_GLOBALS
    return sorted(f"undeclared variable {name}" for name in undeclared)


def locale_of(language: str, country: str | None) -> str:
    """The Babel locale for a language, regionalised by the country when Babel knows it."""
    if country:
        candidate = f"{language}_{country.upper()}"
        try:
            Locale.parse(candidate)
            return candidate
        except Exception:  # noqa: S110 - unknown combination: the plain language
            pass
    return language


# -- validation --------------------------------------------------------------------


def check(parts: Mapping[str, str], variables: Mapping[str, Any], *, category_name: str) -> None:
    """Raise TemplateInvalid unless every part parses, uses only declared variables
    and renders with the declared samples in every language."""
    errors: list[dict[str, str]] = []
    try:
        category(category_name)
    except ValueError as error:
        errors.append({"part": "category", "message": str(error)})
    shadowing = sorted(set(variables) & JINJA_GLOBALS)
    if shadowing:
        errors.append({"part": "variables", "message": f"reserved names: {', '.join(shadowing)}"})
    declared = (set(variables) | BUILTIN_VARIABLES) - JINJA_GLOBALS
    for part in PARTS:
        source = parts.get(part, "")
        env = environment_for(part)
        try:
            ast = env.parse(source)
        except TemplateSyntaxError as error:
            errors.append({"part": part, "message": f"syntax error line {error.lineno}: {error}"})
            continue
        refused = forbidden_names(ast, declared)
        if refused:
            errors.append({"part": part, "message": f"not allowed: {', '.join(refused)}"})
            continue
        compiled = env.from_string(ast)  # (the parsed tree: no second parse)
        for language in LANGUAGES:
            try:
                compiled.render({**variables, "locale": language, "timezone": "UTC"})
            except Exception as error:
                errors.append(
                    {"part": part, "message": f"does not render with the samples: {error}"}
                )
                break
    if errors:
        raise TemplateInvalid(errors)


# -- rendering ---------------------------------------------------------------------


# Keyed by the text, not the version: a draft's preview (a new id each time) reuses
# the entry of an identical text and, at worst, pushes out the least recently used.
@lru_cache(maxsize=1024)
def _compiled(part: str, source: str) -> Any:
    return environment_for(part).from_string(source)


# A subject is one line: control characters a variable brings (a name from an event
# written before text fields refused them) become a space. The mail header machinery
# refuses CR and LF anyway; this keeps the message sendable.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def render_version(
    version: TemplateVersion,
    variables: Mapping[str, Any],
    *,
    locale: str | None = None,
    timezone: str = "UTC",
) -> Rendered:
    # Only the template's declared variables reach it (and the two the filters read).
    context = {k: v for k, v in variables.items() if k in version.variables}
    context.update(locale=locale or version.language, timezone=timezone)
    return Rendered(
        subject=one_line(_compiled("subject", version.subject).render(context)),
        body=_compiled("body", version.body).render(context),
        sms=_compiled("sms", version.sms).render(context).strip(),
        language=version.language,
        version=version.version,
    )


def languages_for(language: str) -> list[str]:
    """The person's language, then the fallback order (fr, then en)."""
    return list(dict.fromkeys((language, *FALLBACK_ORDER)))


def pick(versions: Mapping[str, TemplateVersion], language: str) -> TemplateVersion:
    for candidate in languages_for(language):
        if candidate in versions:
            return versions[candidate]
    raise TemplateNotFound("no active template in any language")


# -- the shipped templates ---------------------------------------------------------


def shipped() -> dict[str, dict[str, Any]]:
    """The templates in ``files/``: key -> {category, variables, languages}."""
    found: dict[str, dict[str, Any]] = {}
    folder = resources.files("notifications.templates").joinpath("files")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            found[entry.name.removesuffix(".yaml")] = yaml.safe_load(entry.read_text("utf-8"))
    return found


def seed_rows(skip: frozenset[tuple[str, str]] = frozenset()) -> list[dict[str, Any]]:
    """Version 1 of every shipped template in every language (checked like a save),
    except the (key, language) pairs in ``skip``."""
    rows = []
    for key, spec in shipped().items():
        for language, parts in spec["languages"].items():
            if (key, language) in skip:
                continue
            check(parts, spec["variables"], category_name=spec["category"])
            rows.append(
                {
                    "id": uuid_compat.uuid7(),
                    "key": key,
                    "language": language,
                    "version": 1,
                    "category": spec["category"],
                    "subject": parts["subject"],
                    "body": parts["body"],
                    "sms": parts["sms"],
                    "variables": spec["variables"],
                    "active": True,
                    "created_by": "shipped",
                }
            )
    return rows

"""The cached domain check of email addresses takes the library's decisions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from registry.members import email_syntax
from registry.members.schemas import RegistrationRequest


@pytest.fixture(autouse=True, scope="module")
def _cached_checks() -> None:
    """As in the service (the bootstrap routes the domain check through the cache)."""
    email_syntax.cache_domain_checks()


BODY = {
    "given_name": "Akossiwa",
    "family_name": "Mensah",
    "date_of_birth": "1990-04-27",
    "country_of_residence": "FR",
    "phone": "+33612345678",
}
EMAILS = [
    "a@example.org",
    "b@EXAMPLE.org",
    "c@example.org",
    "d@bücher.de",
    "e@xn--bcher-kva.de",
    "f@localhost",
    "g@exa_mple.org",
    "h@-example.org",
    "i@example..org",
    "j@example.invalid",
    "k@" + "a" * 250 + ".org",
    "l@example.org.",
    "m@gmail.com",
]


def _outcome(email: str) -> str:
    try:
        return str(RegistrationRequest.model_validate(BODY | {"email": email}).email)
    except ValidationError as error:
        return "invalid: " + "; ".join(str(e["msg"]) for e in error.errors())


def test_cached_check_is_what_validation_uses() -> None:
    email_syntax._checked.cache_clear()
    RegistrationRequest.model_validate(BODY | {"email": "x@example.org"})
    RegistrationRequest.model_validate(BODY | {"email": "y@example.org"})
    info = email_syntax._checked.cache_info()
    assert (info.misses, info.hits) == (1, 1)


@pytest.mark.parametrize("email", EMAILS)
def test_same_result_and_message_as_the_library(email: str) -> None:
    domain = email.rsplit("@", 1)[1]
    try:
        expected: object = email_syntax.uncached_domain_check(domain)
    except Exception as error:
        expected = (type(error), str(error))
    for _ in range(2):  # the second time from the cache, when it passed
        try:
            got: object = email_syntax._cached_domain_check(domain)
        except Exception as error:
            got = (type(error), str(error))
        assert got == expected


def test_registration_outcomes_twice_alike() -> None:
    first = [_outcome(e) for e in EMAILS]
    second = [_outcome(e) for e in EMAILS]
    assert first == second
    assert first[0] == "a@example.org"
    assert first[3] == "d@bücher.de"
    assert all(o.startswith("invalid") for o in (first[6], first[7], first[8]))


def test_a_handed_out_result_cannot_change_the_cache() -> None:
    got = email_syntax._cached_domain_check("example.net")
    got["domain"] = "tampered"
    assert email_syntax._cached_domain_check("example.net")["domain"] == "example.net"

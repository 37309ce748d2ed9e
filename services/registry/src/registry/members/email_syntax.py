"""The domain part of email addresses checked once per domain, not once per address.

``EmailStr`` (pydantic) validates with ``email_validator``, whose domain check
(characters, IDNA/UTS-46 normalisation, labels, known special-use names) is a
pure function of the domain and two flags, and is about two thirds of the cost
of validating an address. In an embassy's list most people share a handful of
domains, so a bulk import repeats the same domain check thousands of times.

:func:`cache_domain_checks` puts an LRU cache in front of it. Same decisions:
a domain that passes is remembered with the result the check returned (a copy
is handed out each time), one that fails is not cached and raises as before on
every address; the flags are part of the cache key.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

# The module (the package's attribute of that name is the function it defines).
_validate_module = importlib.import_module("email_validator.validate_email")

_original = _validate_module.validate_email_domain_name


@lru_cache(maxsize=4096)
def _checked(domain: str, test_environment: bool, globally_deliverable: bool) -> Any:
    return _original(
        domain, test_environment=test_environment, globally_deliverable=globally_deliverable
    )


def _cached_domain_check(
    domain: str, test_environment: bool = False, globally_deliverable: bool = True
) -> Any:
    return dict(_checked(domain, test_environment, globally_deliverable))


def cache_domain_checks() -> None:
    """Route email_validator's domain check through the cache (idempotent)."""
    setattr(_validate_module, "validate_email_domain_name", _cached_domain_check)  # noqa: B010


def uncached_domain_check(domain: str, **flags: bool) -> Any:
    """The library's own check (for comparisons in tests)."""
    return _original(domain, **flags)

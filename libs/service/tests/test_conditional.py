"""If-Match parsing shared by every service."""

from __future__ import annotations

import pytest
from fastapi import Response

from diaspora_service.conditional import expected_version, set_etag, version_conflict
from diaspora_service.problems import Problem


@pytest.mark.parametrize(("value", "version"), [(None, None), ("*", None), (' "3" ', 3)])
def test_versions_named_by_if_match(value: str | None, version: int | None) -> None:
    assert expected_version(value) == version


@pytest.mark.parametrize("value", ["3", 'W/"3"', '"three"', '"3", "4"', ""])
def test_anything_but_a_strong_etag_is_412(value: str) -> None:
    with pytest.raises(Problem) as refused:
        expected_version(value)
    assert refused.value.status == 412


def test_etag_and_conflict_carry_the_version() -> None:
    response = Response()
    set_etag(response, 7)
    assert response.headers["etag"] == '"7"'
    unset = Response()
    set_etag(unset, None)
    assert "etag" not in unset.headers
    conflict = version_conflict(8)
    assert conflict.status == 412
    assert conflict.headers == {"ETag": '"8"'}

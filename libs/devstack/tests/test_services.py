"""The development tools find every service through its ``diaspora.services`` entry point."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from diaspora_devstack.services import ENTRY_POINT_GROUP, Service, discover, no_dead_letters

ROOT = Path(__file__).resolve().parents[3]
SERVICE_DIRS = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))


def test_every_service_of_the_workspace_declares_the_entry_point() -> None:
    declared = {}
    for name in SERVICE_DIRS:
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())
        declared[name] = project["project"].get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    assert {name: set(points) for name, points in declared.items()} == {
        name: {name} for name in SERVICE_DIRS
    }
    # ... and the installed environment sees exactly those (uv sync installs the metadata).
    assert sorted(discover()) == SERVICE_DIRS


@pytest.mark.parametrize("name", SERVICE_DIRS)
def test_each_entry_point_gives_what_the_generators_need(name: str) -> None:
    service = discover()[name]
    assert service.version != "0.0.0"
    assert service.description.strip(), "the service package needs a docstring"
    consumers = service.consumers()
    assert consumers, f"{name} runs no consumer?"
    assert all(c.name.startswith(name) for c in consumers)  # ACLs rely on it
    spec = service.openapi()
    assert spec is not None
    assert spec["openapi"].startswith("3.")


async def test_documentation_consumers_handle_no_record() -> None:
    with pytest.raises(RuntimeError, match="documentation-only"):
        await no_dead_letters(topic="t", key=None, value=None, headers={})


def test_a_module_without_build_app_has_no_openapi_document() -> None:
    class Module:
        __name__ = "diaspora_devstack.services"

        @staticmethod
        def consumers(_dead_letters: object) -> list[object]:
            return []

    service = Service(name="quiet", module=Module())
    assert service.openapi() is None
    assert service.consumers() == []

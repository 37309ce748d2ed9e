"""The shipped package holds no test helper and no development stand-in (issue 16)."""

from __future__ import annotations

import importlib
import pkgutil

import notifications


def shipped_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(notifications.__path__, "notifications.")]


def test_the_package_ships_no_test_helper_and_no_sms_sink() -> None:
    modules = shipped_modules()
    assert "notifications.entrypoints.http" in modules  # the walk sees the package
    leaf_names = {name.rsplit(".", 1)[-1] for name in modules}
    assert not leaf_names & {"testing", "sms_sink", "conftest"}, sorted(modules)


def test_the_helpers_and_the_sms_stand_in_import_from_outside_the_package() -> None:
    helpers = importlib.import_module("notifications_testing")
    sink = importlib.import_module("diaspora_devstack.sms_sink")
    assert not helpers.__name__.startswith("notifications.")
    assert hasattr(sink, "SmsSink")

"""What `devstack run` reads from deploy/local/processes.toml (no process started here;
tests/test_make_run.py runs it for real)."""

from __future__ import annotations

import pytest

from diaspora_devstack import idp
from diaspora_devstack.config import StackConfig
from diaspora_devstack.run import Layout, dev_issuer_url, load_specs, read_plan, variables
from diaspora_devstack.stack import Endpoints

CFG = StackConfig.from_env()
DEFAULTS = read_plan(CFG)["ports"]
ENDPOINTS = Endpoints("postgresql://postgres@127.0.0.1:55432", "127.0.0.1:19092", external=True)


def test_make_run_keeps_its_fixed_ports_and_names_by_default() -> None:
    layout = Layout.from_env(DEFAULTS, env={})
    assert layout.ports["gateway"] == 8080
    assert layout.ports["idp"] == 8090
    assert layout.databases() == (
        "registry",
        "notifications",
        "matching",
        "consular",
        "returnees",
    )
    assert layout.topic_prefix == ""


def test_ports_and_namespace_come_from_the_environment() -> None:
    layout = Layout.from_env(
        DEFAULTS, env={"DIASPORA_GATEWAY_PORT": "18080", "DIASPORA_RUN_NAMESPACE": "t1"}
    )
    assert layout.ports["gateway"] == 18080
    assert layout.databases() == (
        "t1_registry",
        "t1_notifications",
        "t1_matching",
        "t1_consular",
        "t1_returnees",
    )
    assert layout.topic_prefix == "t1."
    with pytest.raises(ValueError, match="DIASPORA_RUN_NAMESPACE"):
        Layout.from_env(DEFAULTS, env={"DIASPORA_RUN_NAMESPACE": "x; drop"})


def test_the_issuer_is_the_one_the_identity_provider_publishes() -> None:
    for port in (8090, 18090):
        assert dev_issuer_url(port) == idp.issuer_url(port)


def test_every_long_running_process_has_a_readiness_check_on_its_own_port() -> None:
    layout = Layout.from_env(DEFAULTS, env={"DIASPORA_GATEWAY_PORT": "18080"})
    specs = load_specs(CFG, variables(CFG, ENDPOINTS, layout))
    for spec in specs:
        if not spec.oneshot:
            assert spec.ready, f"{spec.name} has no readiness check"
        for value in [*spec.command, *spec.env.values(), *spec.ready]:
            assert "{" not in value, (spec.name, value)
    gateway = next(s for s in specs if s.name == "gateway")
    # Ready only when every service answers through its route.
    assert gateway.ready == [
        "http://127.0.0.1:18080/health",
        "http://127.0.0.1:18080/api/registry/health/live",
        "http://127.0.0.1:18080/api/notifications/health/live",
        "http://127.0.0.1:18080/api/matching/health/live",
        "http://127.0.0.1:18080/api/consular/health/live",
        "http://127.0.0.1:18080/api/returnees/health/live",
    ]
    # Each process's health port is the one it is told to serve.
    for spec in specs:
        health = next((v for k, v in spec.env.items() if k.endswith("_HEALTH_PORT")), None)
        if health is not None:
            assert spec.ready == [f"http://127.0.0.1:{health}/health/ready"]

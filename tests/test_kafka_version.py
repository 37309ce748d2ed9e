"""One Kafka version everywhere: the local stack's (deploy/local/kafka/pom.xml, what
`make run` and the tests run), the compose file's and the cluster manifests' image tags,
and every version the docs and the README name."""

from __future__ import annotations

import re
from pathlib import Path

from diaspora_devstack.config import StackConfig
from diaspora_devstack.kafka import kafka_version

ROOT = StackConfig.from_env().root
IMAGE = re.compile(r"apache/kafka(?:-native)?:([\w.+-]+)")
# "Kafka 4.4", "Apache Kafka 4.4.0" in prose.
NAMED = re.compile(r"\bKafka (\d+\.\d+(?:\.\d+)?)\b")


def _files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "docker-compose.yml"]
    for folder, patterns in (
        (ROOT / "deploy", ("*.yaml", "*.yml", "Dockerfile*", "*.md")),
        (ROOT / "docs", ("*.md", "*.yaml", "*.yml")),
        (ROOT / "services", ("Dockerfile*",)),
    ):
        for pattern in patterns:
            found.extend(folder.rglob(pattern))
    return sorted(set(found))


def test_the_local_stack_compose_and_the_cluster_run_the_same_kafka() -> None:
    version = kafka_version(StackConfig.from_env())
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version

    images: dict[str, list[str]] = {}
    named: dict[str, list[str]] = {}
    for path in _files():
        text = path.read_text(errors="replace")
        where = str(path.relative_to(ROOT))
        for tag in IMAGE.findall(text):
            images.setdefault(where, []).append(tag)
        for mentioned in NAMED.findall(text):
            named.setdefault(where, []).append(mentioned)

    # The places that run a broker all say which image.
    assert "docker-compose.yml" in images
    assert "deploy/k8s/kafka/statefulset.yaml" in images
    wrong_images = {where: tags for where, tags in images.items() if set(tags) != {version}}
    assert wrong_images == {}, f"the local stack runs Kafka {version}"
    # Prose may shorten 4.4.0 to 4.4, never name another release.
    wrong_names = {
        where: versions
        for where, versions in named.items()
        if any(not f"{version}.".startswith(f"{v}.") for v in versions)
    }
    assert wrong_names == {}, f"the local stack runs Kafka {version}"

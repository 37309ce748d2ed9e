"""Formatting a local broker's storage with the real Kafka StorageTool."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from diaspora_devstack import kafka
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import free_port


def test_new_cluster_ids_are_base64url_uuids_never_read_as_an_option() -> None:
    ids = [kafka.new_cluster_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)


# Runs the Kafka StorageTool (a JVM): seconds, not milliseconds.
@pytest.mark.slow
def test_storage_formats_with_an_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # Ids written before new_cluster_id existed may start with "-" (1 in 64 did).
    cfg = StackConfig.from_env().private(
        tmp_path, kafka_port=free_port(), kafka_controller_port=free_port()
    )
    kafka.fetch_jars(cfg)
    data = tmp_path / "data"
    props = tmp_path / "server.properties"
    controller = free_port()
    props.write_text(
        kafka.server_properties(
            node_id=1,
            port=free_port(),
            controller_port=controller,
            data=data,
            voters=f"1@127.0.0.1:{controller}",
        )
    )
    cluster = "-" + kafka.new_cluster_id()[1:]
    kafka.format_storage(cfg, props, cluster)
    assert f"cluster.id={cluster}" in (data / "meta.properties").read_text()

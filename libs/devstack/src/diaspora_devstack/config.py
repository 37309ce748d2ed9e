"""Where the local platform keeps its state and which ports it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The checkout's root: the folder holding the workspace's pyproject.toml."""
    env = os.environ.get("DIASPORA_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "libs").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class StackConfig:
    root: Path
    state: Path
    pg_port: int
    kafka_port: int
    kafka_controller_port: int
    # Where downloaded jars are kept; shared by private test clusters.
    cache: Path | None = None

    @property
    def cache_dir(self) -> Path:
        return self.cache or self.state

    def private(self, state: Path, *, kafka_port: int, kafka_controller_port: int) -> StackConfig:
        """A configuration for a separate broker (tests that stop or kill brokers)."""
        return StackConfig(
            root=self.root,
            state=state,
            pg_port=self.pg_port,
            kafka_port=kafka_port,
            kafka_controller_port=kafka_controller_port,
            cache=self.cache_dir,
        )

    @classmethod
    def from_env(cls) -> StackConfig:
        root = repo_root()
        state = Path(os.environ.get("DIASPORA_STATE_DIR", root / ".local")).resolve()
        return cls(
            root=root,
            state=state,
            pg_port=int(os.environ.get("DIASPORA_PG_PORT", "55432")),
            kafka_port=int(os.environ.get("DIASPORA_KAFKA_PORT", "19092")),
            kafka_controller_port=int(os.environ.get("DIASPORA_KAFKA_CONTROLLER_PORT", "19093")),
        )

    @property
    def pg_url(self) -> str:
        """Server URL without a database name (libpq form)."""
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def log_dir(self) -> Path:
        return self.state / "log"

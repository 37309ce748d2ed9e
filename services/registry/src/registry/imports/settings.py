"""Settings of bulk imports and duplicate detection: ``REGISTRY_IMPORT_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.imports.reading import Limits


class ImportSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REGISTRY_IMPORT_", extra="ignore", frozen=True, populate_by_name=True
    )

    # Run the import runner inside the HTTP process (the default, nothing else to start);
    # false where `registry-import-worker` runs it as its own process.
    runner: bool = True
    # How often the runner looks for queued imports when nothing woke it.
    poll_seconds: float = Field(default=2.0, gt=0)
    # Check rows in a worker process forked per job (on the other core, pipelined with the
    # writes) rather than in a thread sharing the GIL with them; a thread where fork is absent.
    validation_process: bool = True
    # Rows per batch: the unit of all-or-nothing and of progress (one transaction each).
    batch_size: int = Field(default=1_000, ge=1, le=10_000)
    # The largest file accepted (bytes); the gateway has its own limit in front of it.
    max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # The largest number of data rows in one file.
    max_rows: int = Field(default=500_000, ge=1)
    # Cells per row (up to its last non-empty cell) and characters per cell.
    max_columns: int = Field(default=200, ge=10)
    max_cell_chars: int = Field(default=1_000, ge=100)
    # XLSX: the archive's total uncompressed size, and the largest compression ratio of
    # any part over 1 MiB (beyond it: a decompression bomb). Checked before unzipping.
    max_uncompressed_bytes: int = Field(default=200 * 1024 * 1024, ge=1024 * 1024)
    max_compression_ratio: float = Field(default=100.0, ge=10)
    # The upload is read (format, header, every row counted and checked) in a process
    # forked for it, whose address space may grow by at most this much (RLIMIT_AS).
    reader_memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=64 * 1024 * 1024)

    def limits(self) -> Limits:
        return Limits(
            max_columns=self.max_columns,
            max_cell=self.max_cell_chars,
            max_uncompressed=self.max_uncompressed_bytes,
            max_ratio=self.max_compression_ratio,
        )

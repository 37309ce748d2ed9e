"""Duplicate detection's setting (the environment read through pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DuplicateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    # Duplicate pairs scoring at least this are flagged for review (registry.duplicates.scoring),
    # on every registration and import (REGISTRY_DUPLICATE_THRESHOLD).
    duplicate_threshold: float = Field(default=0.6, gt=0, le=1)

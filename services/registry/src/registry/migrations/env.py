# Every feature's tables, declared on the one metadata (for Alembic's comparisons).
from diaspora_service.migrations import run_env
from registry import person_keys
from registry.access_log import tables as access_log
from registry.associations import tables as associations
from registry.duplicates import tables as duplicates
from registry.imports import tables as imports
from registry.members import tables as members
from registry.statistics import tables as statistics
from registry.tables import metadata

__all__ = [
    "access_log",
    "associations",
    "duplicates",
    "imports",
    "members",
    "person_keys",
    "statistics",
]

run_env(metadata)

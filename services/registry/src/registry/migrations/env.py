from diaspora_service.migrations import run_env
from registry.tables import metadata

run_env(metadata)

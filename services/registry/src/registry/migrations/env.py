from diaspora_service.migrations import run_env
from registry.adapters.orm import metadata

run_env(metadata)

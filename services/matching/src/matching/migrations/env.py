from diaspora_service.migrations import run_env
from matching.adapters.orm import metadata

run_env(metadata)

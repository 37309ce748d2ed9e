from diaspora_service.migrations import run_env
from returnees.bootstrap import metadata

run_env(metadata)

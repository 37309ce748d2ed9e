from consular.bootstrap import metadata
from diaspora_service.migrations import run_env

run_env(metadata)

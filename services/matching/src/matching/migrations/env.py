from diaspora_service.migrations import run_env
from matching.bootstrap import metadata

run_env(metadata())

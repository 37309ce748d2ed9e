"""Local infrastructure for development and tests, with no Docker and no root."""

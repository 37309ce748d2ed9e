"""Duplicate detection: name keys, scoring, candidate search, review cases and merge."""

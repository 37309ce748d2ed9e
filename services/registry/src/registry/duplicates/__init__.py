"""Duplicate detection at registration: name keys, scoring, candidate search, cases opened.

Below members (a registration flags duplicates in its own transaction); officers review
the cases in :mod:`registry.duplicate_review`.
"""

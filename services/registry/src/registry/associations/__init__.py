"""Associations of the diaspora: their records, members and officers."""

"""Advisories of the returnees' watchlist and the awareness subscribers they reach."""

"""Ranking of experts for a need: hard filters, a score and its reasons."""

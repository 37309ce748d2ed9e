"""Campaigns: one message to a segment of the diaspora, throttled and resumable."""

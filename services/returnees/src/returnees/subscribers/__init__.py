"""Awareness subscribers: people in Togo who subscribe by email or phone to migration
awareness messages and to advisories of chosen countries (double opt-in, one-step
unsubscribe)."""

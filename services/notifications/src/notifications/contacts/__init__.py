"""Contacts: the contact kept of each member from the registry's events, its
verification, erasure and merge; the profile reminder."""

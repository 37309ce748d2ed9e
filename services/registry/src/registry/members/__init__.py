"""Members: registration, profiles, the record and its history (the registry's core)."""

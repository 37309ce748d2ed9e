"""The internal key endpoint: other services fetch persons' data keys (crypto-shredding).

See :mod:`diaspora_events.shredding` for the wire format and docs/architecture.md for
why the keys live here (the registry owns persons; erasure destroys the key in the
erasure's own transaction).
"""

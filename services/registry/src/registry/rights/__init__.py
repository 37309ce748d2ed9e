"""A person's rights over their record: update, confirm, history, export, consents, erasure."""

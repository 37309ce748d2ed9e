"""Search of members for officers and coordinators (name, typos tolerated, and filters)."""

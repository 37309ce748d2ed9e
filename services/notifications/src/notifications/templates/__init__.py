"""Message templates: versions in the database, sandboxed rendering, the shipped set."""

"""Statistics read model and its queries; the read-models consumer (statistics, search)."""

"""Review of duplicate cases by officers: list, dismiss, merge."""

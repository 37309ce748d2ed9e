"""Update campaign: how fresh a profile is, and marking the stale ones."""

"""National needs posted by institutions through the ministry's coordinators."""

"""Identity verification: officers record the evidence they checked (a document seen in
person or uploaded); the member's record shows the strongest unexpired level."""

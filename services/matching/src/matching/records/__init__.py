"""What matching holds on a person when the registry erases or merges them."""

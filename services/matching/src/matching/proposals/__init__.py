"""Proposals of needs to experts, and the experts' answers."""

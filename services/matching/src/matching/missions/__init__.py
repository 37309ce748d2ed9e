"""Missions that follow accepted proposals: agreement, travel, report, completion, counts."""

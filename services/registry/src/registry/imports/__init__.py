"""Bulk import of embassy lists (CSV, XLSX): reading, validation, jobs and their runner."""

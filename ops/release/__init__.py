"""Tagging, checkpoint VERSION files, the artifact manifest, release notes and the checklist."""

"""Tagging, checkpoint VERSION files, the artifact manifest, sign-offs and release notes."""

"""Backup/restore, deploy strategies, smoke tests, rollback, scale, the lock and the audit log."""

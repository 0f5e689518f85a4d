"""Changing the database the user asked to change: ``upgrade`` and ``downgrade``
with a lock, timeouts and retries, and the checksums recorded of applied scripts."""

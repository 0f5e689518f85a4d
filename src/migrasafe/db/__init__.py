"""What migrasafe knows of databases, and nothing of projects: URLs and redaction,
and one module per dialect (SQLite, PostgreSQL, MySQL/MariaDB) for what differs."""

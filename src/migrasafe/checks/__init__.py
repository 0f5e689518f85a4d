"""The checks: findings and their registries, ``validate`` (the revision files),
``lint`` (operations, without a database) and ``verify`` (round trips on a scratch
database)."""

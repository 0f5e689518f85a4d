"""What migrasafe knows of a project's files: its configuration, settings, revision
files and their graph, and the one place that runs its ``env.py``.

Below the checks and commands; above :mod:`migrasafe.db`. Light to import: the
read-only commands' lean path reads revision files and settings from here.
"""

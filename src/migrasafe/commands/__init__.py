"""The commands that are neither a check nor a deploy: ``status``, ``history``,
``init``/``revision`` and ``demo``, each a function that takes a project and
returns data, and the lean path that answers the read-only ones from a cache."""

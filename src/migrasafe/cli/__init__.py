"""The edge: arguments in (:mod:`.main`), text, JSON and CI formats out
(:mod:`.render`, :mod:`.plain`, :mod:`.formats`)."""

from migrasafe.cli.main import main

__all__ = ["main"]

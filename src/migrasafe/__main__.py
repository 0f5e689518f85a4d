"""``python -m migrasafe``: the same as the ``migrasafe`` command."""

from .cli import main

main()

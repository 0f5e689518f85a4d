"""``python -m migrasafe``: the same as the ``migrasafe`` command."""

from migrasafe.cli import main

main()

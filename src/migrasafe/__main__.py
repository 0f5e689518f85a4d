"""``python -m migrasafe``: the same as the ``migrasafe`` command."""

from migrasafe.cli.main import main

main()

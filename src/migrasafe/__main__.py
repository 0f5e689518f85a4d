"""``python -m migrasafe``: the same as the ``migrasafe`` command."""

from migrasafe._entry import main

main()

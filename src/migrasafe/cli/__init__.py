"""The edge: arguments in, text, JSON and CI formats out.

:mod:`.app` is the command group (options, one-line errors, exit codes, output);
:mod:`.project`, :mod:`.deploy`, :mod:`.checks` and :mod:`.fleet` add its commands;
:mod:`.render`, :mod:`.plain` and :mod:`.formats` print results.
"""

from migrasafe.cli import checks, deploy, fleet, project  # noqa: F401 - each registers its commands
from migrasafe.cli.app import main

__all__ = ["main"]

"""The ``kazeflow`` command line: a thin shell over the library.

``_main`` holds the command group and the error boundary, ``_store`` and ``_db`` the
commands that read a store or its database, ``_options``, ``_input``, ``_format`` and
``_log`` what the commands share (options, parsing, output, logging).
"""

from kazeflow.cli._main import cli, main

__all__ = ["cli", "main"]

"""The benchmark harness: scenarios, load driver, overhead measurement and reports.

``switchyard bench`` is its command line: :func:`add_arguments` adds the bench's
options to a parser and :func:`main` runs it with the parsed arguments.
"""

from ._bench import add_arguments, main

__all__ = ["add_arguments", "main"]

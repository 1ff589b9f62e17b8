"""`python -m pysud`."""

from .cli import entry

entry()

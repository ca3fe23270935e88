"""Finding media: the query language people type (``query``, its grammar in the docstring),
its execution (``run``), tags (``tags``); the use cases in ``usecases``."""

from pipeline.search.query import Query, parse

__all__ = ["Query", "parse"]

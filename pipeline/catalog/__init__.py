"""The catalog: SQLAlchemy Core tables, migrations, and the queries the pipeline runs.

SQLite by default, PostgreSQL at scale: no SQLite-only SQL outside ``db.py``'s connection set-up.
"""

from pipeline.catalog.db import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]

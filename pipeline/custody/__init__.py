"""The chain of custody: the append-only, hash-chained log (``log``), signed checkpoints
(``checkpoints``) and keys (``keys``), fixity and verification (``fixity``), supervised access
(``access``), court exports (``export``) and the standalone bag verifier they ship
(``verify_bag``); the use cases in ``usecases``."""

from pipeline.custody.verify_bag import Problem

__all__ = ["Problem"]

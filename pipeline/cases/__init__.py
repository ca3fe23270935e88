"""Cases and the 15-day rule: cases and links (``records``), bulk import (``bulk``),
categories, the deadline, coverage of mandatory recordings, compliance, sealing case files
(``seal``); the use cases in ``usecases``."""

from pipeline.cases.deadline import CaseState, Deadline, DeadlineMode

__all__ = ["CaseState", "Deadline", "DeadlineMode"]

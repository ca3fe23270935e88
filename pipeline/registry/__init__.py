"""The device registry: devices, officers and assignments (``records``), stations and the
rules for their dump folders (``stations``), bulk import and export (``bulk``), health
(``health``), the identifier rule (``identifiers``); the use cases in ``usecases``."""

from pipeline.registry.identifiers import identifier_problem
from pipeline.registry.records import Change, require_registrar

__all__ = ["Change", "identifier_problem", "require_registrar"]

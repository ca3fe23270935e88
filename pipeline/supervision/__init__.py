"""Supervision (统计分析、发现薄弱环节): the compliance dashboard's figures for a department and
a period (``figures``), the daily summary per department (``alerts``), and the use cases the
CLI and the web call (``usecases``)."""

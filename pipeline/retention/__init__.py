"""Retention, holds and disposal (issue 19)."""

"""Connectors: one folder per kind of system; base.py holds the seams and status mapping."""

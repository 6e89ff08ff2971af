"""Reconciliation: compare one entity set between two systems, report drift, heal it."""

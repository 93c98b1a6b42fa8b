"""Mutations (in progress)."""

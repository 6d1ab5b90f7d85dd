"""Weights: seeded initialisation, weight files (untrusted input) and matching them by name."""

"""Scaling-law formulas: pure numpy, each citing its paper and equation. No torch here."""

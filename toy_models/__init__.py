"""Solvable toy models whose scaling exponents are known in closed form (numpy/torch only)."""

"""``scaling-callback reproduce``: check the project's fitter against solvable toy models.

Each experiment measures losses on a toy model from :mod:`toy_models`, fits them with
:class:`scaling_callback.fitting.power_law.PowerLawFit` (never the theory) and compares the fitted
exponent with its closed form from :mod:`toy_models.theory`.
"""

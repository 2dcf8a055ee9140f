"""Fitters (scipy, sklearn-like): ``fit`` returns self, learned values end in ``_``."""

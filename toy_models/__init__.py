"""Solvable toy models whose scaling exponents are known in closed form (numpy/torch only).

Exact evaluations (numpy): :mod:`~toy_models.mrs` (Maloney–Roberts–Sully linear random features),
:mod:`~toy_models.gradient_flow` (random features under gradient flow), :mod:`~toy_models.plrf`
(power-law random features, exact one-pass-SGD recursion), :mod:`~toy_models.frontier` (lower
envelope and optimal size of a family of loss curves), :mod:`~toy_models.theory` (closed-form
exponents with their validity regions). Trainable LightningModules: :mod:`~toy_models.plrf_module`
and :mod:`~toy_models.tiny_lm` (on :mod:`~toy_models.zipf_corpus`), both scheduled by
:mod:`~toy_models.schedules`.
"""

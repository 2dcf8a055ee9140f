"""Adapters to other sweep schedulers: Optuna studies (``integrations.optuna``) and Ray Tune (``integrations.ray``).

Each needs its optional extra (``pip install 'scaling-callback[optuna]'`` or ``[ray]``) and is imported
only when asked for.
"""

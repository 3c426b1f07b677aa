"""Building blocks of moodops: datasets, features, models, protocols, metrics.

Nothing in here imports ray, mlflow, optuna or typer, so a fold runs the same
in a unit test, a Ray worker or a notebook.
"""

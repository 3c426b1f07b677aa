#!/bin/sh
# Runs once when the PostgreSQL volume is created: a database for Optuna studies beside MLflow's.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname mlflow -c "CREATE DATABASE optuna"

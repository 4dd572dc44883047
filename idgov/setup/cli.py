"""Placeholder until the module lands."""

import typer


def register(app: typer.Typer) -> None:
    """Add init, demo and serve to app."""

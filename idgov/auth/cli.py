"""Placeholder until the module lands."""

import typer

app = typer.Typer()

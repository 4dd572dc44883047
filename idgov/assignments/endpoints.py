"""Placeholder router until the module lands."""

from fastapi import APIRouter

router = APIRouter()

"""Birthright rules: roles and entitlements given by HR attributes."""

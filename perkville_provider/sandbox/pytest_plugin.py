"""Pytest fixtures for the Perkville sandbox (placeholder until the sandbox lands)."""

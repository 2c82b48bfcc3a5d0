"""Helpers shared by the tests (fixtures stay in the conftest modules)."""

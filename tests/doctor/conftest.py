"""The doctor's tests use the hook tests' sandbox fixtures (reset sandbox, connections, hooks)."""

from tests.hooks.conftest import define_connection, make_hook, sandbox_control

__all__ = ["define_connection", "make_hook", "sandbox_control"]

"""Typed async clients of the external systems. Leaves: they never import modules or emit events."""

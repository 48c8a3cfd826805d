"""The user module: Users of an organisation, their profiles and line managers; lifecycle events."""

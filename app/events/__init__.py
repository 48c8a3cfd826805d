"""The app-wide event emitter: typed events, delivery modes, outbox and relay."""

"""Domain modules. They never import each other; they talk through typed events."""

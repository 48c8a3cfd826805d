"""The task inbox, generic: what the procurement, hr and leasing modules share.

Each module owns its tables (declared with the column mixins of :mod:`.models`), its routes and
its listeners; this package holds the source-agnostic machinery they plug a source into: the
sync's diff, the paged local read, the idempotent action with its claim on the task, bulk
actions and the audit trail. It knows no source system and publishes nothing itself: the module
gives it a :class:`~app.core.inbox.source.TaskSource` and an
:class:`~app.core.inbox.engine.InboxEvents` that publishes the module's typed events.
"""

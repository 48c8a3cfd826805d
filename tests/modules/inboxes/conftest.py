from tests.inbox_support import *  # noqa: F403

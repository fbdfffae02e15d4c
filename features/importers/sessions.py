"""How an exported record names the agent session that produced it.

Light on purpose (no pandas): the command line shows the default pattern in ``--help``
without loading the training stack.
"""

from __future__ import annotations

#: Where a PR (or another exported record) names the agent session that wrote it, e.g.
#: the branch ``agent/session-7f3a9c2e41`` or the line ``Session: 7f3a9c2e41``. The first
#: group is the id; a match whose id has no digit (``session management``) is skipped.
DEFAULT_SESSION_PATTERN = r"(?i)(?:session|sess)[-_/: ]*([0-9A-Za-z-]{6,})"

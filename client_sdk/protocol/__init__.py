"""The inboxgate wire protocol: every shape that crosses a process boundary over HTTP.

The gateway and the SDK both import this package; nothing redefines a shape. It depends only on
the standard library and msgspec (``tests/test_protocol.py`` checks that importing it loads no
HTTP or websocket library). Encoders and decoders are built once, at import, in ``codecs``.

Shapes follow Chatwoot's APIs (``reference/chatwoot-public-api.md`` §3, §6.6 and the agent
reference) so a client written for Chatwoot decodes them unchanged:

* request bodies (``*Request``) are lenient: every field optional, unknown fields ignored;
* server-to-client shapes never forbid unknown fields and give new fields defaults, so an older
  SDK keeps decoding a newer gateway;
* fields that Chatwoot omits when empty (``attachments``, ``sender``) default to ``UNSET``, which
  msgspec leaves out of the encoded object.

Every name is re-exported here, so ``from client_sdk.protocol import X`` is the one way to
import a shape. The modules, by who uses them::

    public     the public client API: requests, answers, senders, attachments, error bodies (SDK)
    push       realtime event payloads and the broadcast envelope (SDK)
    codecs     the JSON encoder and the decoders, built once (SDK)
    agent      agent API: conversations, messages, typing (gateway)
    admin      agent API: contacts, inboxes, inbox members, agents, profile (gateway)
    platform   Platform API and the GoHighLevel-compatible create (gateway)
    webhooks   webhook management, the delivery outbox and webhook payloads (gateway)
    bots       agent bots (gateway)

The Action Cable frames around the push payloads are ``client_sdk.cable_protocol``.
"""

from __future__ import annotations

from .admin import *  # noqa: F403
from .agent import *  # noqa: F403
from .bots import *  # noqa: F403
from .codecs import *  # noqa: F403
from .platform import *  # noqa: F403
from .public import *  # noqa: F403
from .push import *  # noqa: F403
from .webhooks import *  # noqa: F403

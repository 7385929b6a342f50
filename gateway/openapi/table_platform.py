"""The route table of the Platform API (``gateway/routes/platform.py`` and its agent bots),
the GoHighLevel-compatible conversation create (``highlevel.py``) and ``/health``."""

from __future__ import annotations

from client_sdk import protocol as p

from ..routes.platform import PLATFORM
from ..services.highlevel import API_VERSION
from .model import UPDATE, Auth, Param, ops

APP = Auth.PLATFORM
T_ACCOUNTS, T_USERS, T_BOTS = "Platform: accounts", "Platform: users", "Platform: agent bots"
ACCOUNT = PLATFORM + "/accounts/{account_id}"
USER = PLATFORM + "/users/{user_id}"
BOT = PLATFORM + "/agent_bots/{bot_id}"
OWN = "Only what this platform app created (else 401 Non permissible resource)."
WRAPPED = "The attributes may also be wrapped in an object named after the resource."

PLATFORM_OPERATIONS = [
    *ops("POST", PLATFORM + "/accounts", "platform_account_create", "Create an account",
         T_ACCOUNTS, APP, body=p.PlatformAccountRequest, response=p.PlatformAccount,
         description=WRAPPED),
    *ops("GET", ACCOUNT, "platform_account_show", "An account", T_ACCOUNTS, APP,
         response=p.PlatformAccount, description=OWN),
    *ops(UPDATE, ACCOUNT, "platform_account_update", "Update an account", T_ACCOUNTS, APP,
         body=p.PlatformAccountRequest, response=p.PlatformAccount,
         description=OWN + " status suspended locks the account's agent API."),
    *ops("GET", ACCOUNT + "/account_users", "platform_account_users",
         "The account's memberships", T_ACCOUNTS, APP, response=list[p.AccountUserRecord],
         description=OWN),
    *ops("POST", ACCOUNT + "/account_users", "platform_account_user_add",
         "Add a user to the account", T_ACCOUNTS, APP, body=p.AccountUserRequest,
         response=p.AccountUserRecord, description=OWN),
    *ops("DELETE", ACCOUNT + "/account_users", "platform_account_user_remove",
         "Remove a user from the account", T_ACCOUNTS, APP, body=p.AccountUserRequest,
         description=OWN),
    *ops("POST", PLATFORM + "/users", "platform_user_create", "Create a user", T_USERS, APP,
         body=p.PlatformUserRequest, response=p.PlatformUser,
         description="Its access_token is in this answer, once. " + WRAPPED),
    *ops("GET", USER, "platform_user_show", "A user", T_USERS, APP, response=p.PlatformUser,
         description=OWN),
    *ops(UPDATE, USER, "platform_user_update", "Update a user", T_USERS, APP,
         body=p.PlatformUserRequest, response=p.PlatformUser, description=OWN),
    *ops("POST", USER + "/token", "platform_user_token",
         "A new access token for the user (the old one stops working)", T_USERS, APP,
         response=p.UserToken, description=OWN),
    *ops("GET", PLATFORM + "/agent_bots", "platform_bot_list", "Agent bots", T_BOTS, APP,
         response=list[p.PlatformAgentBot], description=OWN),
    *ops("POST", PLATFORM + "/agent_bots", "platform_bot_create", "Create an agent bot",
         T_BOTS, APP, body=p.AgentBotRequest, response=p.PlatformAgentBot,
         description="Without account_id: a system bot, usable in every account. " + WRAPPED),
    *ops("GET", BOT, "platform_bot_show", "An agent bot", T_BOTS, APP,
         response=p.PlatformAgentBot, description=OWN),
    *ops(UPDATE, BOT, "platform_bot_update", "Update an agent bot", T_BOTS, APP,
         body=p.AgentBotRequest, response=p.PlatformAgentBot, description=OWN),
    *ops("DELETE", BOT, "platform_bot_delete", "Delete an agent bot", T_BOTS, APP,
         description=OWN),
    *ops("DELETE", BOT + "/avatar", "platform_bot_remove_avatar", "Remove the bot's avatar",
         T_BOTS, APP, response=p.PlatformAgentBot, description=OWN),
]  # fmt: skip

VERSION = Param("Version", str, "GoHighLevel's API version.", enum=(API_VERSION,),
                required=True, location="header")  # fmt: skip
HIGHLEVEL_HELP = (
    "GoHighLevel's Conversations API create, for integrations written against it: the "
    "Bearer token is an inboxgate user's access token, locationId an inbox identifier (or "
    "an account id: its oldest inbox), contactId a contact id of that account."
)

READY = {
    "type": "object",
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "properties": {
                "database": {"type": "string"}, "redis": {"type": "string"},
                "draining": {"type": "boolean"},
            },
            "required": ["database", "redis", "draining"],
        },
    },
    "required": ["status", "checks"],
}  # fmt: skip
READY_HELP = (
    "200 when ready. 503 with the same body when not: each check says `ok`, `not configured` "
    "or `error: ...`, and `draining` is true from SIGTERM on (docs/operations.md)."
)

OTHER_OPERATIONS = [
    *ops("POST", "/conversations/", "highlevel_conversation_create",
         "Create a conversation (GoHighLevel-compatible)", "GoHighLevel", Auth.HIGHLEVEL,
         body=p.HighLevelConversationRequest, response=p.HighLevelConversationResponse,
         headers=(VERSION,), description=HIGHLEVEL_HELP),
    *ops("POST", "/conversations", "highlevel_conversation_create_no_slash",
         "Create a conversation (GoHighLevel-compatible, without the trailing slash)",
         "GoHighLevel", Auth.HIGHLEVEL, body=p.HighLevelConversationRequest,
         response=p.HighLevelConversationResponse, headers=(VERSION,),
         description=HIGHLEVEL_HELP),
    *ops("GET", "/health", "health", "The process is up (liveness)", "Operations", Auth.NONE,
         response={"type": "object", "properties": {"status": {"const": "ok"}},
                   "required": ["status"]}),
    *ops("GET", "/ready", "ready",
         "The node can serve: database and Redis answer, not draining (readiness; 503 if not)",
         "Operations", Auth.NONE, response=READY, description=READY_HELP),
]  # fmt: skip

# The operating layer (gateway/observability.py) answers these before any route: a test
# holds them to it instead of to the router.
PROBES = ("/health", "/ready")

"""The route table of the agent API's contacts, inboxes, inbox members, agents, webhooks and
agent bots (``gateway/routes/agent_admin.py``, ``agent_webhooks.py``, ``agent_bots.py``)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..routes.agent_routing import ACCOUNT
from .model import UPDATE, Auth, Param, ops

AGENT = Auth.AGENT
T_CONTACTS, T_INBOXES, T_AGENTS = "Agent: contacts", "Agent: inboxes", "Agent: agents"
T_WEBHOOKS, T_BOTS = "Agent: webhooks", "Agent: agent bots"
LIMIT = (402,)  # the account's inbox or agent limit (Platform API ``limits``)
PAGE = Param("page", int, "1-based page, 15 contacts per page.")
SORT = Param("sort", str, "A contact attribute; prefix with - for descending.")
WITH_INBOXES = Param("include_contact_inboxes", str, "false leaves contact_inboxes out.")
WRAPPED = "The attributes may also be wrapped in an object named after the resource."
CONTACT = ACCOUNT + "/contacts/{contact_id}"
INBOX = ACCOUNT + "/inboxes/{inbox_id}"
MEMBERS = ACCOUNT + "/inbox_members"
BOT = ACCOUNT + "/agent_bots/{bot_id}"
ADMIN = "Administrators only."

CONTACT_OPERATIONS = [
    *ops("GET", ACCOUNT + "/contacts", "agent_contact_list", "Contacts", T_CONTACTS, AGENT,
         response=p.ContactList, query=(PAGE, SORT, WITH_INBOXES)),
    *ops("POST", ACCOUNT + "/contacts", "agent_contact_create", "Create a contact",
         T_CONTACTS, AGENT, body=p.AgentContactRequest, response=p.ContactCreateResponse,
         description=WRAPPED + " With inbox_id, a contact session in that inbox too."),
    *ops("GET", ACCOUNT + "/contacts/search", "agent_contact_search", "Search contacts",
         T_CONTACTS, AGENT, response=p.ContactList,
         query=(Param("q", str, "Name, e-mail, phone or identifier."), PAGE, SORT,
                WITH_INBOXES)),
    *ops("GET", CONTACT, "agent_contact_show", "A contact", T_CONTACTS, AGENT,
         response=p.ContactPayload),
    *ops(UPDATE, CONTACT, "agent_contact_update", "Update a contact", T_CONTACTS, AGENT,
         body=p.AgentContactRequest, response=p.ContactPayload, description=WRAPPED),
    *ops("GET", CONTACT + "/conversations", "agent_contact_conversations",
         "A contact's conversations", T_CONTACTS, AGENT, response=p.ContactConversationList),
    *ops("POST", CONTACT + "/contact_inboxes", "agent_contact_inbox_create",
         "A contact session for the contact in an inbox", T_CONTACTS, AGENT,
         body=p.ContactInboxesRequest, response=p.ContactInboxEntry),
]  # fmt: skip

INBOX_OPERATIONS = [
    *ops("GET", ACCOUNT + "/inboxes", "agent_inbox_list", "Inboxes", T_INBOXES, AGENT,
         response=p.InboxList),
    *ops("POST", ACCOUNT + "/inboxes", "agent_inbox_create", "Create an API inbox",
         T_INBOXES, AGENT, body=p.InboxRequest, response=p.AgentInbox, extra_errors=LIMIT,
         description=ADMIN + " " + WRAPPED),
    *ops("GET", INBOX, "agent_inbox_show", "An inbox", T_INBOXES, AGENT,
         response=p.AgentInbox),
    *ops(UPDATE, INBOX, "agent_inbox_update", "Update an inbox", T_INBOXES, AGENT,
         body=p.InboxRequest, response=p.AgentInbox, description=ADMIN + " " + WRAPPED),
    *ops("GET", ACCOUNT + "/inbox_members/{inbox_id}", "agent_inbox_members",
         "An inbox's agents", T_INBOXES, AGENT, response=p.AgentList),
    *ops("POST", MEMBERS, "agent_inbox_members_add", "Add agents to an inbox", T_INBOXES,
         AGENT, body=p.InboxMembersRequest, response=p.AgentList, description=ADMIN),
    *ops(UPDATE, MEMBERS, "agent_inbox_members_replace", "Replace an inbox's agents",
         T_INBOXES, AGENT, body=p.InboxMembersRequest, response=p.AgentList,
         description=ADMIN),
    *ops("DELETE", MEMBERS, "agent_inbox_members_remove", "Remove agents from an inbox",
         T_INBOXES, AGENT, body=p.InboxMembersRequest, description=ADMIN),
    *ops("GET", INBOX + "/webhook_secret", "agent_inbox_webhook_secret",
         "The secret that signs deliveries to the inbox's webhook_url", T_INBOXES, AGENT,
         response=p.InboxWebhookSecret, description=ADMIN),
    *ops("GET", INBOX + "/agent_bot", "agent_inbox_bot", "The inbox's agent bot", T_INBOXES,
         AGENT, response=p.InboxAgentBot),
    *ops("POST", INBOX + "/set_agent_bot", "agent_inbox_set_bot",
         "Attach (an id) or detach (null) the inbox's agent bot", T_INBOXES, AGENT,
         body=p.SetAgentBotRequest, description=ADMIN),
]  # fmt: skip

AGENT_OPERATIONS = [
    *ops("GET", ACCOUNT + "/agents", "agent_agent_list", "The account's agents", T_AGENTS,
         AGENT, response=list[p.Agent]),
    *ops("POST", ACCOUNT + "/agents", "agent_agent_create", "Add an agent", T_AGENTS, AGENT,
         body=p.AgentRequest, response=p.CreatedAgent, extra_errors=LIMIT,
         description=ADMIN + " A new user's access_token is in this answer, once."),
    *ops(UPDATE, ACCOUNT + "/agents/{user_id}", "agent_agent_update", "Update an agent",
         T_AGENTS, AGENT, body=p.AgentRequest, response=p.Agent, description=ADMIN),
    *ops("DELETE", ACCOUNT + "/agents/{user_id}", "agent_agent_delete",
         "Remove an agent from the account", T_AGENTS, AGENT, description=ADMIN),
]  # fmt: skip

WEBHOOK_OPERATIONS = [
    *ops("GET", ACCOUNT + "/webhooks", "agent_webhook_list", "Webhooks", T_WEBHOOKS, AGENT,
         response=p.WebhookListEnvelope, description=ADMIN),
    *ops("POST", ACCOUNT + "/webhooks", "agent_webhook_create", "Create a webhook",
         T_WEBHOOKS, AGENT, body=p.WebhookRequest, response=p.WebhookEnvelope,
         description=ADMIN + " " + WRAPPED),
    *ops(UPDATE, ACCOUNT + "/webhooks/{webhook_id}", "agent_webhook_update",
         "Update a webhook", T_WEBHOOKS, AGENT, body=p.WebhookRequest,
         response=p.WebhookEnvelope, description=ADMIN + " " + WRAPPED),
    *ops("DELETE", ACCOUNT + "/webhooks/{webhook_id}", "agent_webhook_delete",
         "Delete a webhook", T_WEBHOOKS, AGENT, description=ADMIN),
    *ops("GET", ACCOUNT + "/webhook_deliveries", "agent_webhook_deliveries",
         "The latest deliveries of the account", T_WEBHOOKS, AGENT,
         response=p.WebhookDeliveriesEnvelope, description=ADMIN,
         query=(Param("status", str, "pending, delivered or dead."), Param("webhook_id", int))),
    *ops("POST", ACCOUNT + "/webhook_deliveries/{delivery_id}/retry",
         "agent_webhook_delivery_retry", "Deliver a dead delivery again", T_WEBHOOKS, AGENT,
         response=p.WebhookDelivery, description=ADMIN),
]  # fmt: skip

BOT_OPERATIONS = [
    *ops("GET", ACCOUNT + "/agent_bots", "agent_bot_list", "Agent bots (the account's and "
         "system bots)", T_BOTS, AGENT, response=list[p.AgentBot]),
    *ops("POST", ACCOUNT + "/agent_bots", "agent_bot_create", "Create an agent bot", T_BOTS,
         AGENT, body=p.AgentBotRequest, response=p.AgentBot,
         description=ADMIN + " Its access_token is in this answer, once. " + WRAPPED),
    *ops("GET", BOT, "agent_bot_show", "An agent bot", T_BOTS, AGENT, response=p.AgentBot),
    *ops(UPDATE, BOT, "agent_bot_update", "Update an agent bot", T_BOTS, AGENT,
         body=p.AgentBotRequest, response=p.AgentBot, description=ADMIN + " " + WRAPPED),
    *ops("DELETE", BOT, "agent_bot_delete", "Delete an agent bot", T_BOTS, AGENT,
         description=ADMIN),
    *ops("POST", BOT + "/reset_access_token", "agent_bot_reset_token",
         "A new access token for the bot", T_BOTS, AGENT, response=p.AgentBot,
         description=ADMIN),
    *ops("DELETE", BOT + "/avatar", "agent_bot_remove_avatar", "Remove the bot's avatar",
         T_BOTS, AGENT, response=p.AgentBot, description=ADMIN),
]  # fmt: skip

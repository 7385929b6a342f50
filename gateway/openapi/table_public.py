"""The route table of the public client API (``gateway/routes/public.py``)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..routes.public import CONTACT, CONVERSATION, INBOX
from .model import UPDATE, Auth, Param, ops

PUBLIC = Auth.PUBLIC
BEFORE = Param("before", int, "Messages with an id lower than this (the page before).")
AFTER = Param("after", int, "Messages with an id higher than this.")
HMAC = (401,)  # a wrong or missing identifier_hash

T_INBOX, T_CONTACTS = "Public: inbox", "Public: contacts"
T_CONVERSATIONS, T_MESSAGES, T_CSAT = (
    "Public: conversations", "Public: messages", "Public: CSAT",
)  # fmt: skip

PUBLIC_OPERATIONS = [
    *ops("GET", INBOX, "public_inbox_show", "The inbox's public settings", T_INBOX, PUBLIC,
          response=p.PublicInbox),
    *ops("POST", INBOX + "/contacts", "public_contact_create", "Create a contact session",
          T_CONTACTS, PUBLIC, body=p.ContactCreateRequest, response=p.PublicContact,
          extra_errors=HMAC, description="With identifier and identifier_hash (hex "
          "HMAC-SHA256 of the identifier with the inbox's hmac_token) the session is "
          "verified as that contact."),
    *ops("GET", CONTACT, "public_contact_show", "The contact session", T_CONTACTS, PUBLIC,
          response=p.PublicContact, extra_errors=HMAC,
          query=(Param("identifier"), Param("identifier_hash"))),
    *ops(UPDATE, CONTACT, "public_contact_update", "Update the contact", T_CONTACTS, PUBLIC,
          body=p.ContactUpdateRequest, response=p.Contact, extra_errors=HMAC),
    *ops("GET", CONTACT + "/conversations", "public_conversation_list",
          "The session's conversations", T_CONVERSATIONS, PUBLIC,
          response=list[p.PublicConversation]),
    *ops("POST", CONTACT + "/conversations", "public_conversation_create",
          "Start a conversation", T_CONVERSATIONS, PUBLIC, body=p.ConversationCreateRequest,
          response=p.PublicConversation),
    *ops("GET", CONVERSATION, "public_conversation_show", "A conversation", T_CONVERSATIONS,
          PUBLIC, response=p.PublicConversation),
    *ops("POST", CONVERSATION + "/toggle_status", "public_conversation_resolve",
          "Resolve the conversation (sends the CSAT survey when enabled)", T_CONVERSATIONS,
          PUBLIC, response=p.PublicConversation),
    *ops("POST", CONVERSATION + "/toggle_typing", "public_conversation_typing",
          "Typing on or off", T_CONVERSATIONS, PUBLIC, body=p.ToggleTypingRequest),
    *ops("POST", CONVERSATION + "/update_last_seen", "public_conversation_seen",
          "Mark the conversation read", T_CONVERSATIONS, PUBLIC),
    *ops("GET", CONVERSATION + "/messages", "public_message_list",
          "Messages, oldest first (20 per page)", T_MESSAGES, PUBLIC,
          response=list[p.PublicMessage], query=(BEFORE, AFTER)),
    *ops("POST", CONVERSATION + "/messages", "public_message_create", "Send a message",
          T_MESSAGES, PUBLIC, body=p.MessageCreateRequest, multipart=True,
          response=p.PublicMessage, description="Idempotent on echo_id: a retried send "
          "returns the original message. Attachments: multipart/form-data, attachments[]."),
    *ops(UPDATE, CONVERSATION + "/messages/{message_id}", "public_message_update",
          "Submit a form or CSAT answer", T_MESSAGES, PUBLIC, body=p.MessageUpdateRequest,
          response=p.PublicMessage),
    *ops("GET", "/public/api/v1/csat_survey/{uuid}", "public_csat_show", "A CSAT survey",
          T_CSAT, PUBLIC, response=p.CsatSurvey),
    *ops(UPDATE, "/public/api/v1/csat_survey/{uuid}", "public_csat_update",
          "Rate the conversation (1-5) and comment", T_CSAT, PUBLIC,
          body=p.CsatSurveyUpdateRequest, response=p.CsatSurvey),
    *ops("GET", "/attachments/{token}/{name}", "attachment_download", "An attachment",
          "Attachments", Auth.NONE, binary=True,
          description="The signed, expiring data_url of an attachment."),
]  # fmt: skip

"""The schema: every table described once (see :mod:`.ddl` for the notation), and the
migrations of both engines rendered from it, applied in order on start and by
``inboxgate migrate``. A change to the schema is a new version: its name in ``VERSIONS``, its
columns under that version in ``added`` (or a new table with that ``since``), its indexes and
steps with that version. Times are epoch seconds; JSON is text.
"""

from __future__ import annotations

from .ddl import Index, Step, Table, migrations

VERSIONS = {
    1: "initial schema",
    2: "inbox members",
    3: "agent API: conversations and messages",
    4: "agent API: contacts, inboxes, agents, platform apps",
    5: "webhooks: subscriptions, delivery outbox",
    6: "agent bots",
    7: "instance secrets",
    8: "trust model: verified sessions prove again",
    9: "indexes where periodic work and lookups scanned",
}

# One table a block, one column a line: kept as written, as a DDL listing reads.
# fmt: off
TABLES = [
    Table(
        "accounts", 1,
        """
        id ID
        name TEXT NOT NULL
        last_display_id INT NOT NULL DEFAULT 0
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        # Platform API account fields (reference agent §4); a suspended account's agent API
        # answers 401 "Account is suspended".
        added={4: """
            locale TEXT NOT NULL DEFAULT 'en'
            domain TEXT
            support_email TEXT
            status TEXT NOT NULL DEFAULT 'active'
            features JSON NOT NULL DEFAULT '{}'
            limits JSON NOT NULL DEFAULT '{}'
            custom_attributes JSON NOT NULL DEFAULT '{}'
            """},
    ),
    Table(
        "inboxes", 1,
        """
        id ID
        account_id INT NOT NULL REFERENCES accounts(id)
        name TEXT NOT NULL
        identifier TEXT NOT NULL UNIQUE
        hmac_token TEXT NOT NULL UNIQUE
        hmac_mandatory BOOL NOT NULL DEFAULT FALSE
        webhook_url TEXT
        csat_survey_enabled BOOL NOT NULL DEFAULT FALSE
        csat_display_type TEXT NOT NULL DEFAULT 'emoji'
        csat_message TEXT
        timezone TEXT NOT NULL DEFAULT 'UTC'
        working_hours_enabled BOOL NOT NULL DEFAULT FALSE
        working_hours JSON NOT NULL
        out_of_office_message TEXT
        greeting_enabled BOOL NOT NULL DEFAULT FALSE
        greeting_message TEXT
        lock_to_single_conversation BOOL NOT NULL DEFAULT FALSE
        allowed_origins JSON NOT NULL DEFAULT '[]'
        reply_time_window_hours INT
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        # Inbox settings of the agent API (§2.5, §3.6); channel_attributes is the API
        # channel's additional_attributes (agent_reply_time_window).
        added={4: """
            enable_auto_assignment BOOL NOT NULL DEFAULT TRUE
            enable_email_collect BOOL NOT NULL DEFAULT TRUE
            allow_messages_after_resolved BOOL NOT NULL DEFAULT TRUE
            sender_name_type TEXT NOT NULL DEFAULT 'friendly'
            business_name TEXT
            csat_config JSON NOT NULL DEFAULT '{}'
            auto_assignment_config JSON NOT NULL DEFAULT '{}'
            channel_attributes JSON NOT NULL DEFAULT '{}'
            """},
        # An account's inboxes: every administrator's socket asks for them (the inboxes it
        # hears), a scan of every account's inboxes without it.
        indexes=[Index("inboxes_account", "account_id", since=9)],
    ),
    Table(
        "users", 1,
        """
        id ID
        name TEXT NOT NULL
        email TEXT NOT NULL UNIQUE
        access_token_hash TEXT NOT NULL UNIQUE
        pubsub_token TEXT NOT NULL UNIQUE
        availability TEXT NOT NULL DEFAULT 'online'
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        added={4: """
            display_name TEXT
            custom_attributes JSON NOT NULL DEFAULT '{}'
            auto_offline BOOL NOT NULL DEFAULT TRUE
            password_hash TEXT
            """},
    ),
    Table(
        "account_users", 1,
        """
        account_id INT NOT NULL REFERENCES accounts(id)
        user_id INT NOT NULL REFERENCES users(id)
        role TEXT NOT NULL
        created_at TIME NOT NULL
        PRIMARY KEY (account_id, user_id)
        """,
        # The platform API shows account_users as records with an id of their own (numbered
        # by the steps of version 4).
        added={4: """
            id SERIAL
            inviter_id INT
            updated_at TIME
            """},
        # A user's accounts (the profile, the platform API): the key leads with the account.
        indexes=[Index("account_users_user", "user_id", since=9)],
    ),
    Table(
        "contacts", 1,
        """
        id ID
        account_id INT NOT NULL REFERENCES accounts(id)
        name TEXT NOT NULL DEFAULT ''
        email TEXT
        phone_number TEXT
        identifier TEXT
        additional_attributes JSON NOT NULL DEFAULT '{}'
        custom_attributes JSON NOT NULL DEFAULT '{}'
        blocked BOOL NOT NULL DEFAULT FALSE
        contact_type TEXT NOT NULL DEFAULT 'visitor'
        last_activity_at TIME
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        UNIQUE (account_id, identifier)
        UNIQUE (account_id, email)
        UNIQUE (account_id, phone_number)
        """,
        indexes=[Index("contacts_account_activity", "account_id, last_activity_at", since=4)],
    ),
    Table(
        "contact_inboxes", 1,
        """
        id ID
        contact_id INT NOT NULL REFERENCES contacts(id)
        inbox_id INT NOT NULL REFERENCES inboxes(id)
        source_id TEXT NOT NULL
        pubsub_token TEXT NOT NULL UNIQUE
        hmac_verified BOOL NOT NULL DEFAULT FALSE
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        UNIQUE (inbox_id, source_id)
        """,
        indexes=[Index("contact_inboxes_contact", "contact_id")],
    ),
    Table(
        "conversations", 1,
        """
        id ID
        account_id INT NOT NULL REFERENCES accounts(id)
        inbox_id INT NOT NULL REFERENCES inboxes(id)
        contact_id INT NOT NULL REFERENCES contacts(id)
        contact_inbox_id INT NOT NULL REFERENCES contact_inboxes(id)
        display_id INT NOT NULL
        uuid TEXT NOT NULL UNIQUE
        status TEXT NOT NULL
        assignee_id INT
        contact_last_seen_at TIME
        agent_last_seen_at TIME
        last_activity_at TIME NOT NULL
        waiting_since TIME
        custom_attributes JSON NOT NULL DEFAULT '{}'
        additional_attributes JSON NOT NULL DEFAULT '{}'
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        UNIQUE (account_id, display_id)
        """,
        # Reference agent §2.7: what the application API's conversation routes keep. labels is
        # the list as shown (Chatwoot's cached_label_list); conversation_labels is what the
        # list filter queries.
        added={3: """
            priority TEXT
            snoozed_until TIME
            team_id INT
            assignee_last_seen_at TIME
            first_reply_created_at TIME
            labels JSON NOT NULL DEFAULT '[]'
            """},
        indexes=[
            Index("conversations_contact", "contact_id"),
            Index("conversations_contact_inbox", "contact_inbox_id"),
            Index("conversations_account_activity", "account_id, last_activity_at", since=3),
            # The snoozed ones whose time has come, looked for every minute on the writer: a
            # scan of every conversation without it (42.7 ms for 500,000 on SQLite).
            Index("conversations_snoozed", "snoozed_until", "status = 'snoozed'", since=9),
        ],
    ),
    Table(
        "messages", 1,
        """
        id ID
        account_id INT NOT NULL
        inbox_id INT NOT NULL
        conversation_id INT NOT NULL REFERENCES conversations(id)
        content TEXT
        message_type INT NOT NULL
        content_type TEXT NOT NULL DEFAULT 'text'
        content_attributes JSON NOT NULL DEFAULT '{}'
        private BOOL NOT NULL DEFAULT FALSE
        status TEXT NOT NULL DEFAULT 'sent'
        sender_type TEXT
        sender_id INT
        echo_id TEXT
        source_id TEXT
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        UNIQUE (conversation_id, echo_id)
        """,
        indexes=[
            Index("messages_conversation", "conversation_id, id"),
            Index("messages_conversation_time", "conversation_id, created_at"),
        ],
    ),
    Table(
        "attachments", 1,
        """
        id ID
        message_id INT NOT NULL REFERENCES messages(id)
        account_id INT NOT NULL
        file_type TEXT NOT NULL
        extension TEXT
        file_name TEXT NOT NULL
        content_type TEXT NOT NULL
        file_size INT NOT NULL
        storage_key TEXT NOT NULL
        width INT
        height INT
        created_at TIME NOT NULL
        """,
        indexes=[Index("attachments_message", "message_id")],
    ),
    Table(
        "csat_survey_responses", 1,
        """
        id ID
        account_id INT NOT NULL
        conversation_id INT NOT NULL REFERENCES conversations(id)
        message_id INT NOT NULL UNIQUE REFERENCES messages(id)
        rating INT NOT NULL
        feedback_message TEXT
        contact_id INT
        assigned_agent_id INT
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        # Deleting a conversation deletes its rating, then checks the foreign key: a scan of
        # every rating each, without it.
        indexes=[Index("csat_survey_responses_conversation", "conversation_id", since=9)],
    ),
    # ``last_offset`` is bumped by an upsert whose row lock (PostgreSQL) is held until commit,
    # so concurrent writers on any number of nodes take a stream's offsets one at a time.
    Table(
        "streams", 1,
        """
        name TEXT PRIMARY KEY
        epoch TEXT NOT NULL
        last_offset INT NOT NULL
        """,
    ),
    Table(
        "events", 1,
        """
        id ID
        name TEXT NOT NULL
        payload BLOB NOT NULL
        created_at TIME NOT NULL
        """,
    ),
    Table(
        "stream_entries", 1,
        """
        stream TEXT NOT NULL
        stream_offset INT NOT NULL
        event_id INT NOT NULL REFERENCES events(id)
        created_at TIME NOT NULL
        PRIMARY KEY (stream, stream_offset)
        """,
        indexes=[
            Index("stream_entries_time", "created_at"),
            # Pruning deletes events no entry points at; without this index PostgreSQL scans.
            # So does SQLite, for every event it deletes, to keep the foreign key (a prune of
            # an hour's 16,000 events over a million entries ran for more than ten minutes,
            # holding the writer): an index of its own from version 9.
            Index("stream_entries_event", "event_id", only="postgresql"),
            Index("stream_entries_event", "event_id", since=9, only="sqlite"),
        ],
    ),
    # Agents hear an inbox's events when they are its members; administrators hear every inbox
    # of their account (reference §6.5).
    Table(
        "inbox_members", 2,
        """
        inbox_id INT NOT NULL REFERENCES inboxes(id)
        user_id INT NOT NULL REFERENCES users(id)
        created_at TIME NOT NULL
        PRIMARY KEY (inbox_id, user_id)
        """,
        indexes=[Index("inbox_members_user", "user_id", since=2)],
    ),
    Table(
        "conversation_labels", 3,
        """
        conversation_id INT NOT NULL REFERENCES conversations(id)
        label TEXT NOT NULL
        PRIMARY KEY (conversation_id, label)
        """,
        indexes=[Index("conversation_labels_label", "label", since=3)],
    ),
    Table(
        "teams", 3,
        """
        id ID
        account_id INT NOT NULL REFERENCES accounts(id)
        name TEXT NOT NULL
        description TEXT
        allow_auto_assign BOOL NOT NULL DEFAULT TRUE
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
    ),
    Table(
        "team_members", 3,
        """
        team_id INT NOT NULL REFERENCES teams(id)
        user_id INT NOT NULL REFERENCES users(id)
        PRIMARY KEY (team_id, user_id)
        """,
    ),
    Table(
        "platform_apps", 4,
        """
        id ID
        name TEXT NOT NULL
        access_token_hash TEXT NOT NULL UNIQUE
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
    ),
    # What a platform app created (or claimed): it may read and change only these.
    Table(
        "platform_app_permissibles", 4,
        """
        platform_app_id INT NOT NULL REFERENCES platform_apps(id)
        permissible_type TEXT NOT NULL
        permissible_id INT NOT NULL
        created_at TIME NOT NULL
        PRIMARY KEY (platform_app_id, permissible_type, permissible_id)
        """,
    ),
    # Account webhooks (reference agent §3.7). ``subscriptions`` is a JSON array of event
    # names; ``secret`` signs every delivery (Chatwoot 4.11+).
    Table(
        "webhooks", 5,
        """
        id ID
        account_id INT NOT NULL REFERENCES accounts(id)
        inbox_id INT REFERENCES inboxes(id)
        name TEXT
        url TEXT NOT NULL
        subscriptions JSON NOT NULL
        secret TEXT NOT NULL
        webhook_type TEXT NOT NULL DEFAULT 'account_type'
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        UNIQUE (account_id, url)
        """,
    ),
    # The API inbox's webhook_url is signed with a secret of its own (Chatwoot 4.13's
    # channel_api.secret), never the hmac_token; created on first use.
    Table(
        "inbox_webhook_secrets", 5,
        """
        inbox_id INT PRIMARY KEY REFERENCES inboxes(id)
        secret TEXT NOT NULL
        created_at TIME NOT NULL
        """,
    ),
    # The outbox: written in the transaction that logs the event, sent by the worker (claimed
    # by several nodes at once on PostgreSQL: FOR UPDATE SKIP LOCKED). ``uuid`` is
    # X-Chatwoot-Delivery (stable across retries); a pending row whose ``next_attempt_at`` lies
    # ahead is waiting for a retry or leased to a sender.
    Table(
        "webhook_deliveries", 5,
        """
        id ID
        uuid TEXT NOT NULL UNIQUE
        account_id INT NOT NULL
        receiver TEXT NOT NULL
        webhook_id INT
        inbox_id INT
        message_id INT
        url TEXT NOT NULL
        secret TEXT NOT NULL
        event TEXT NOT NULL
        body BLOB NOT NULL
        status TEXT NOT NULL DEFAULT 'pending'
        attempts INT NOT NULL DEFAULT 0
        next_attempt_at TIME NOT NULL
        last_error TEXT
        last_status_code INT
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        delivered_at TIME
        """,
        indexes=[
            Index("webhook_deliveries_due", "next_attempt_at", "status = 'pending'", since=5),
            Index("webhook_deliveries_webhook", "webhook_id, status", since=5),
            Index("webhook_deliveries_account", "account_id, id", since=5),
            Index("webhook_deliveries_time", "updated_at", since=5),
        ],
    ),
    # Reference agent §2.4, §2.7, §6. ``account_id`` NULL is a system bot (made through the
    # Platform API, usable in any account). The token is kept as SHA-256, like users';
    # ``secret`` signs the deliveries to ``outgoing_url`` (Chatwoot 4.13).
    Table(
        "agent_bots", 6,
        """
        id ID
        account_id INT REFERENCES accounts(id)
        name TEXT NOT NULL
        description TEXT
        outgoing_url TEXT
        bot_type TEXT NOT NULL DEFAULT 'webhook'
        bot_config JSON NOT NULL DEFAULT '{}'
        access_token_hash TEXT NOT NULL UNIQUE
        secret TEXT NOT NULL
        avatar_url TEXT
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        indexes=[Index("agent_bots_account", "account_id", since=6)],
    ),
    # One bot per inbox; ``account_id`` lets a system bot act in the inbox's account.
    Table(
        "agent_bot_inboxes", 6,
        """
        inbox_id INT PRIMARY KEY REFERENCES inboxes(id)
        agent_bot_id INT NOT NULL REFERENCES agent_bots(id)
        account_id INT NOT NULL REFERENCES accounts(id)
        status TEXT NOT NULL DEFAULT 'active'
        created_at TIME NOT NULL
        updated_at TIME NOT NULL
        """,
        indexes=[Index("agent_bot_inboxes_bot", "agent_bot_id, account_id", since=6)],
    ),
    # Secrets every node of a deployment must share (the key of stream ids and attachment
    # links), kept where every node already looks: the database.
    Table(
        "instance_secrets", 7,
        """
        name TEXT PRIMARY KEY
        value TEXT NOT NULL
        """,
    ),
]
# fmt: on

STEPS = [
    # account_users.id: numbered for the rows there, and for every row inserted without one.
    # SQLite by trigger (MAX + 1); PostgreSQL's BIGSERIAL by a sequence, without two
    # concurrent inserts computing one id, and a trigger fills updated_at.
    Step(
        4,
        sqlite=[
            "UPDATE account_users SET id = rowid, updated_at = created_at",
            """CREATE TRIGGER account_users_id AFTER INSERT ON account_users
                WHEN NEW.id IS NULL
                BEGIN
                    UPDATE account_users
                    SET id = (SELECT COALESCE(MAX(id), 0) + 1 FROM account_users),
                        updated_at = NEW.created_at
                    WHERE account_id = NEW.account_id AND user_id = NEW.user_id;
                END""",
        ],
        postgresql=[
            "UPDATE account_users SET updated_at = created_at",
            """CREATE FUNCTION account_users_updated_at() RETURNS trigger AS $$
                BEGIN
                    NEW.updated_at := COALESCE(NEW.updated_at, NEW.created_at);
                    RETURN NEW;
                END $$ LANGUAGE plpgsql""",
            """CREATE TRIGGER account_users_updated_at BEFORE INSERT ON account_users
                FOR EACH ROW EXECUTE FUNCTION account_users_updated_at()""",
        ],
    ),
    # Before the trust model a valid hash for any identifier verified a session on whatever
    # contact it was on, which a claimed e-mail could have picked. Nothing tells those sessions
    # from sound ones, so every session proves again (the widget sends the hash when it loads;
    # an SDK client with its next contact call).
    Step(
        8,
        sqlite=["UPDATE contact_inboxes SET hmac_verified = FALSE WHERE hmac_verified"],
        postgresql=["UPDATE contact_inboxes SET hmac_verified = FALSE WHERE hmac_verified"],
    ),
]

SQLITE_MIGRATIONS = migrations(VERSIONS, TABLES, STEPS, "sqlite")
POSTGRES_MIGRATIONS = migrations(VERSIONS, TABLES, STEPS, "postgresql")

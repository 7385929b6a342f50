"""Schema migrations, applied in order on start and by ``inboxgate migrate``.

Each migration is a list of statements. Times are epoch seconds (``REAL``); JSON is text.
The PostgreSQL store keeps its own DDL with the same tables and version numbers.
"""

from __future__ import annotations

SQLITE_MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """CREATE TABLE accounts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                last_display_id INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE inboxes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL,
                identifier TEXT NOT NULL UNIQUE,
                hmac_token TEXT NOT NULL UNIQUE,
                hmac_mandatory BOOLEAN NOT NULL DEFAULT FALSE,
                webhook_url TEXT,
                csat_survey_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                csat_display_type TEXT NOT NULL DEFAULT 'emoji',
                csat_message TEXT,
                timezone TEXT NOT NULL DEFAULT 'UTC',
                working_hours_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                working_hours TEXT NOT NULL,
                out_of_office_message TEXT,
                greeting_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                greeting_message TEXT,
                lock_to_single_conversation BOOLEAN NOT NULL DEFAULT FALSE,
                allowed_origins TEXT NOT NULL DEFAULT '[]',
                reply_time_window_hours INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                email TEXT NOT NULL UNIQUE,
                access_token_hash TEXT NOT NULL UNIQUE,
                pubsub_token TEXT NOT NULL UNIQUE,
                availability TEXT NOT NULL DEFAULT 'online',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE account_users (
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                user_id INTEGER NOT NULL REFERENCES users(id),
                role TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (account_id, user_id))""",
            """CREATE TABLE contacts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL DEFAULT '',
                email TEXT,
                phone_number TEXT,
                identifier TEXT,
                additional_attributes TEXT NOT NULL DEFAULT '{}',
                custom_attributes TEXT NOT NULL DEFAULT '{}',
                blocked BOOLEAN NOT NULL DEFAULT FALSE,
                contact_type TEXT NOT NULL DEFAULT 'visitor',
                last_activity_at REAL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (account_id, identifier),
                UNIQUE (account_id, email),
                UNIQUE (account_id, phone_number))""",
            """CREATE TABLE contact_inboxes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                contact_id INTEGER NOT NULL REFERENCES contacts(id),
                inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
                source_id TEXT NOT NULL,
                pubsub_token TEXT NOT NULL UNIQUE,
                hmac_verified BOOLEAN NOT NULL DEFAULT FALSE,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (inbox_id, source_id))""",
            "CREATE INDEX contact_inboxes_contact ON contact_inboxes (contact_id)",
            """CREATE TABLE conversations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
                contact_id INTEGER NOT NULL REFERENCES contacts(id),
                contact_inbox_id INTEGER NOT NULL REFERENCES contact_inboxes(id),
                display_id INTEGER NOT NULL,
                uuid TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL,
                assignee_id INTEGER,
                contact_last_seen_at REAL,
                agent_last_seen_at REAL,
                last_activity_at REAL NOT NULL,
                waiting_since REAL,
                custom_attributes TEXT NOT NULL DEFAULT '{}',
                additional_attributes TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (account_id, display_id))""",
            "CREATE INDEX conversations_contact ON conversations (contact_id)",
            "CREATE INDEX conversations_contact_inbox ON conversations (contact_inbox_id)",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL,
                inbox_id INTEGER NOT NULL,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id),
                content TEXT,
                message_type INTEGER NOT NULL,
                content_type TEXT NOT NULL DEFAULT 'text',
                content_attributes TEXT NOT NULL DEFAULT '{}',
                private BOOLEAN NOT NULL DEFAULT FALSE,
                status TEXT NOT NULL DEFAULT 'sent',
                sender_type TEXT,
                sender_id INTEGER,
                echo_id TEXT,
                source_id TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (conversation_id, echo_id))""",
            "CREATE INDEX messages_conversation ON messages (conversation_id, id)",
            "CREATE INDEX messages_conversation_time ON messages (conversation_id, created_at)",
            """CREATE TABLE attachments (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_id INTEGER NOT NULL REFERENCES messages(id),
                account_id INTEGER NOT NULL,
                file_type TEXT NOT NULL,
                extension TEXT,
                file_name TEXT NOT NULL,
                content_type TEXT NOT NULL,
                file_size INTEGER NOT NULL,
                storage_key TEXT NOT NULL,
                width INTEGER,
                height INTEGER,
                created_at REAL NOT NULL)""",
            "CREATE INDEX attachments_message ON attachments (message_id)",
            """CREATE TABLE csat_survey_responses (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id),
                message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
                rating INTEGER NOT NULL,
                feedback_message TEXT,
                contact_id INTEGER,
                assigned_agent_id INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE streams (
                name TEXT PRIMARY KEY,
                epoch TEXT NOT NULL,
                last_offset INTEGER NOT NULL)""",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                payload BLOB NOT NULL,
                created_at REAL NOT NULL)""",
            """CREATE TABLE stream_entries (
                stream TEXT NOT NULL,
                stream_offset INTEGER NOT NULL,
                event_id INTEGER NOT NULL REFERENCES events(id),
                created_at REAL NOT NULL,
                PRIMARY KEY (stream, stream_offset))""",
            "CREATE INDEX stream_entries_time ON stream_entries (created_at)",
        ],
    ),
    (
        2,
        "inbox members",
        [
            # Agents hear an inbox's events when they are its members; administrators hear
            # every inbox of their account (reference §6.5).
            """CREATE TABLE inbox_members (
                inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
                user_id INTEGER NOT NULL REFERENCES users(id),
                created_at REAL NOT NULL,
                PRIMARY KEY (inbox_id, user_id))""",
            "CREATE INDEX inbox_members_user ON inbox_members (user_id)",
        ],
    ),
    (
        3,
        "agent API: conversations and messages",
        [
            # Reference agent §2.7: what the application API's conversation routes keep.
            "ALTER TABLE conversations ADD COLUMN priority TEXT",
            "ALTER TABLE conversations ADD COLUMN snoozed_until REAL",
            "ALTER TABLE conversations ADD COLUMN team_id INTEGER",
            "ALTER TABLE conversations ADD COLUMN assignee_last_seen_at REAL",
            "ALTER TABLE conversations ADD COLUMN first_reply_created_at REAL",
            # The label list as shown (Chatwoot's cached_label_list); conversation_labels is
            # what the list filter queries.
            "ALTER TABLE conversations ADD COLUMN labels TEXT NOT NULL DEFAULT '[]'",
            "CREATE INDEX conversations_account_activity "
            "ON conversations (account_id, last_activity_at)",
            """CREATE TABLE conversation_labels (
                conversation_id INTEGER NOT NULL REFERENCES conversations(id),
                label TEXT NOT NULL,
                PRIMARY KEY (conversation_id, label))""",
            "CREATE INDEX conversation_labels_label ON conversation_labels (label)",
            """CREATE TABLE teams (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL,
                description TEXT,
                allow_auto_assign BOOLEAN NOT NULL DEFAULT TRUE,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE team_members (
                team_id INTEGER NOT NULL REFERENCES teams(id),
                user_id INTEGER NOT NULL REFERENCES users(id),
                PRIMARY KEY (team_id, user_id))""",
        ],
    ),
    (
        4,
        "agent API: contacts, inboxes, agents, platform apps",
        [
            # Platform API account fields (reference agent §4); a suspended account's agent
            # API answers 401 "Account is suspended".
            "ALTER TABLE accounts ADD COLUMN locale TEXT NOT NULL DEFAULT 'en'",
            "ALTER TABLE accounts ADD COLUMN domain TEXT",
            "ALTER TABLE accounts ADD COLUMN support_email TEXT",
            "ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active'",
            "ALTER TABLE accounts ADD COLUMN features TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE accounts ADD COLUMN limits TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE accounts ADD COLUMN custom_attributes TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE users ADD COLUMN display_name TEXT",
            "ALTER TABLE users ADD COLUMN custom_attributes TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE users ADD COLUMN auto_offline BOOLEAN NOT NULL DEFAULT TRUE",
            "ALTER TABLE users ADD COLUMN password_hash TEXT",
            # The platform API shows account_users as records with an id of their own.
            "ALTER TABLE account_users ADD COLUMN id INTEGER",
            "ALTER TABLE account_users ADD COLUMN inviter_id INTEGER",
            "ALTER TABLE account_users ADD COLUMN updated_at REAL",
            "UPDATE account_users SET id = rowid, updated_at = created_at",
            """CREATE TRIGGER account_users_id AFTER INSERT ON account_users
                WHEN NEW.id IS NULL
                BEGIN
                    UPDATE account_users
                    SET id = (SELECT COALESCE(MAX(id), 0) + 1 FROM account_users),
                        updated_at = NEW.created_at
                    WHERE account_id = NEW.account_id AND user_id = NEW.user_id;
                END""",
            # Inbox settings of the agent API (§2.5, §3.6); channel_attributes is the API
            # channel's additional_attributes (agent_reply_time_window).
            "ALTER TABLE inboxes ADD COLUMN enable_auto_assignment BOOLEAN NOT NULL DEFAULT TRUE",
            "ALTER TABLE inboxes ADD COLUMN enable_email_collect BOOLEAN NOT NULL DEFAULT TRUE",
            "ALTER TABLE inboxes ADD COLUMN allow_messages_after_resolved BOOLEAN NOT NULL "
            "DEFAULT TRUE",
            "ALTER TABLE inboxes ADD COLUMN sender_name_type TEXT NOT NULL DEFAULT 'friendly'",
            "ALTER TABLE inboxes ADD COLUMN business_name TEXT",
            "ALTER TABLE inboxes ADD COLUMN csat_config TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE inboxes ADD COLUMN auto_assignment_config TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE inboxes ADD COLUMN channel_attributes TEXT NOT NULL DEFAULT '{}'",
            "CREATE INDEX contacts_account_activity ON contacts (account_id, last_activity_at)",
            """CREATE TABLE platform_apps (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                access_token_hash TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            # What a platform app created (or claimed): it may read and change only these.
            """CREATE TABLE platform_app_permissibles (
                platform_app_id INTEGER NOT NULL REFERENCES platform_apps(id),
                permissible_type TEXT NOT NULL,
                permissible_id INTEGER NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (platform_app_id, permissible_type, permissible_id))""",
        ],
    ),
    (
        5,
        "webhooks: subscriptions, delivery outbox",
        [
            # Account webhooks (reference agent §3.7). ``subscriptions`` is a JSON array of
            # event names; ``secret`` signs every delivery (Chatwoot 4.11+).
            """CREATE TABLE webhooks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                inbox_id INTEGER REFERENCES inboxes(id),
                name TEXT,
                url TEXT NOT NULL,
                subscriptions TEXT NOT NULL,
                secret TEXT NOT NULL,
                webhook_type TEXT NOT NULL DEFAULT 'account_type',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (account_id, url))""",
            # The API inbox's webhook_url is signed with a secret of its own (Chatwoot 4.13's
            # channel_api.secret), never the hmac_token; created on first use.
            """CREATE TABLE inbox_webhook_secrets (
                inbox_id INTEGER PRIMARY KEY REFERENCES inboxes(id),
                secret TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            # The outbox: written in the transaction that logs the event, sent by the worker.
            # ``uuid`` is X-Chatwoot-Delivery (stable across retries); a pending row whose
            # ``next_attempt_at`` lies ahead is waiting for a retry or leased to a sender.
            """CREATE TABLE webhook_deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                uuid TEXT NOT NULL UNIQUE,
                account_id INTEGER NOT NULL,
                receiver TEXT NOT NULL,
                webhook_id INTEGER,
                inbox_id INTEGER,
                message_id INTEGER,
                url TEXT NOT NULL,
                secret TEXT NOT NULL,
                event TEXT NOT NULL,
                body BLOB NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                last_error TEXT,
                last_status_code INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                delivered_at REAL)""",
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
            "WHERE status = 'pending'",
            "CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, status)",
            "CREATE INDEX webhook_deliveries_account ON webhook_deliveries (account_id, id)",
            "CREATE INDEX webhook_deliveries_time ON webhook_deliveries (updated_at)",
        ],
    ),
    (
        6,
        "agent bots",
        [
            # Reference agent §2.4, §2.7, §6. ``account_id`` NULL is a system bot (made through
            # the Platform API, usable in any account). The token is kept as SHA-256, like
            # users'; ``secret`` signs the deliveries to ``outgoing_url`` (Chatwoot 4.13).
            """CREATE TABLE agent_bots (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER REFERENCES accounts(id),
                name TEXT NOT NULL,
                description TEXT,
                outgoing_url TEXT,
                bot_type TEXT NOT NULL DEFAULT 'webhook',
                bot_config TEXT NOT NULL DEFAULT '{}',
                access_token_hash TEXT NOT NULL UNIQUE,
                secret TEXT NOT NULL,
                avatar_url TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            "CREATE INDEX agent_bots_account ON agent_bots (account_id)",
            # One bot per inbox; ``account_id`` lets a system bot act in the inbox's account.
            """CREATE TABLE agent_bot_inboxes (
                inbox_id INTEGER PRIMARY KEY REFERENCES inboxes(id),
                agent_bot_id INTEGER NOT NULL REFERENCES agent_bots(id),
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                status TEXT NOT NULL DEFAULT 'active',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            "CREATE INDEX agent_bot_inboxes_bot ON agent_bot_inboxes (agent_bot_id, account_id)",
        ],
    ),
    (
        7,
        "instance secrets",
        [
            # Secrets every node of a deployment must share (the key of stream ids and
            # attachment links), kept where every node already looks: the database.
            """CREATE TABLE instance_secrets (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL)""",
        ],
    ),
    (
        8,
        "trust model: verified sessions prove again",
        [
            # Before the trust model a valid hash for any identifier verified a session on
            # whatever contact it was on, which a claimed e-mail could have picked. Nothing
            # tells those sessions from sound ones, so every session proves again (the widget
            # sends the hash when it loads; an SDK client with its next contact call).
            "UPDATE contact_inboxes SET hmac_verified = FALSE WHERE hmac_verified",
        ],
    ),
]

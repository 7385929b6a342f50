"""Sans-I/O store operations, grouped by what they touch. See ``gateway.store.sql``."""

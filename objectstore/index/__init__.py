"""The index: the SQLite database every package's records live in, and its schema."""

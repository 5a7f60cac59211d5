"""The Hivemind capture client (stdlib only). Filled in by issues 5/9 and 6/9."""

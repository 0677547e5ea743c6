"""Who may call OpenHMO and what they may see: accounts, passwords, tokens, scopes, audit."""

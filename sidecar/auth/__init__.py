"""Provider auth: token requests and answers (grants), login flows (pkce), authlib (oauth)."""

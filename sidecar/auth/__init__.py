"""Getting a request its credential: the resolver (``credentials``), single-flight refresh
(``refresh``), what requests teach about profiles (``outcomes``), login flows (``login``,
``pkce``) and other CLIs' logins taken in (``cli_imports``)."""

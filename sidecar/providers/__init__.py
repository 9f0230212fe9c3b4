"""Everything provider-specific: the built-in catalog (``catalog``), how a credential is sent
(``injection``) and what a request carries besides (``quirks``), token-endpoint requests and
answers (``grants``) and the OAuth protocol adapter (``oauth``). Pure values and functions: no
I/O, no store."""

"""Staff sign-in (職員認証): staff accounts, two-factor login, sessions and their audit trail.

A context of its own so that every other context authenticates staff the same way and none
of them owns the accounts (the registry used to)."""

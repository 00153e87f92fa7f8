"""The approvals service: approval requests of gated rule firings, their votes and expiry."""

"""OpsLedger's shared libraries."""

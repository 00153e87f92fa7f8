"""OpsLedger services: one package per bounded context."""

"""Benchmarks of the OpsLedger foundation, each beside a raw baseline measured in the same run."""

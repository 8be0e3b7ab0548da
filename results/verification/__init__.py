"""The 2026 third-party test: the fixed lab procedure, declared specifications, and `verify`'s
per-unit determinations, lot report, manifest and signature (docs/verification.md)."""

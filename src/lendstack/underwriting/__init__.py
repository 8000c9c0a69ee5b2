"""Underwriting: applications, identity checks, rule packs, pricing, limits, decisions, audit."""

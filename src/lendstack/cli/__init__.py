"""Command-line entry point: parse, call a service, render. No business logic lives here."""

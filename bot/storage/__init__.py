"""Beacon's storage: ORM tables, engine/session factory, migrations and query functions."""

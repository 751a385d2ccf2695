"""Makes tests/ importable from every tier (pytest puts this folder on sys.path), for script_modules."""

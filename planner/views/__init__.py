"""HTMX pages and partials: thin, they read models and call services (planner/services/)."""

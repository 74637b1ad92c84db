#!/usr/bin/env python
"""Django's command-line utility; configuration errors print one line and exit 2, no traceback."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")
    from django.core.management import execute_from_command_line

    from planner.config import ConfigError
    from planner.embedded import EmbeddedServerError

    try:
        execute_from_command_line(sys.argv)
    except (ConfigError, EmbeddedServerError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

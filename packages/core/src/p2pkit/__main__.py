"""``python -m p2pkit`` runs the command line."""

from p2pkit.cli import main

raise SystemExit(main())

"""``python -m crdtsync`` runs the ``crdtsync`` command line."""

from .cli import main

main()

"""``python -m gateway`` is the ``inboxgate`` command."""

from .cli import main

main()

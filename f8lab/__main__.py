"""``python -m f8lab`` runs the f8lab command."""

from f8lab.cli import main

main()

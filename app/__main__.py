"""`python -m app`: the same as `app serve` (HOST, PORT from the settings; one worker)."""

import sys

from app.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])

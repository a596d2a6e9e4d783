"""Entry point of sandbox (the frozen binary's too): nothing but main()."""
import sys

from helpers.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Entry point of sandbox (the frozen binary's too): nothing but main()."""
from helpers.cli import main_and_exit

if __name__ == "__main__":
    main_and_exit()

"""`python -m mynumber …`: the same command line as the `mynumber` entry point."""

from mynumber.cli import main

if __name__ == "__main__":
    main()

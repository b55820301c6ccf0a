"""`python -m ociruntime` and the `ociruntime` console script."""
import sys


def main():
    from ociruntime.cli import finish, main as cli_main
    finish(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()

"""`python -m ociruntime`: the `ociruntime` command."""
from ociruntime._program import main

if __name__ == "__main__":
    main()

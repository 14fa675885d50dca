"""`python -m llm.testserver`: the fault-injecting test server (llm.testing), under its documented name."""
import sys

from llm.testing.command import main

if __name__ == "__main__":
    sys.exit(main())

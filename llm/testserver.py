"""`python -m llm.testserver`: the fault-injecting test server (llm.testing.faults), under its documented name."""
import sys

from llm.testing.faults import main

if __name__ == "__main__":
    sys.exit(main())

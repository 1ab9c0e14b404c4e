"""The `leadscore` command line: commands only; scoring lives in the `leadscore` library."""

"""Account signals and the built-in account roll-up strategies (step 5: aggregate)."""

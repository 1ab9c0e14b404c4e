"""The built-in rulepack source: serves ``firr-base`` to the composer (step 2: compose)."""

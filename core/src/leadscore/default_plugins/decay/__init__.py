"""Built-in decay curves: none, step, linear, half_life and window (step 4: decay)."""

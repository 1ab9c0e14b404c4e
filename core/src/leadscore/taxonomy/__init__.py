"""What the core, the built-in plugins and third-party plugins share about the world they score:
kinds of email address (:mod:`.email`) and activity types with their intent tiers (:mod:`.activities`)."""

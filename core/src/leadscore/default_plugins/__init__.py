"""The core's own plugins: registered from ``DEFAULT_PLUGINS`` through the same hooks as any plugin."""

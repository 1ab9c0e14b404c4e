"""The core's own plugins, registered from ``DEFAULT_PLUGINS`` through the same hooks as any plugin.

The folders follow the flow of a lead: ``extract`` (signal extractors), ``compose`` (the base
rulepack), ``decay`` (decay curves), ``aggregate`` (account signals and roll-up strategies) and
``route`` (the default router). Matching, caps and bands are the core's own work, not hooks
(see docs/architecture.md). Each module can be switched off with ``LEADSCORE_DISABLE_PLUGINS``.
"""

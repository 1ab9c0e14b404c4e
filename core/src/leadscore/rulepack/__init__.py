"""The rulepack language: schema (IR), loader and validator, and the composer that merges packs per lead."""

from leadscore.rulepack.composer import ComposedPack, Composer
from leadscore.rulepack.loader import parse_rulepacks, read_source
from leadscore.rulepack.schema import Condition, RuleIR, Rulepack

__all__ = ["ComposedPack", "Composer", "Condition", "RuleIR", "Rulepack", "parse_rulepacks", "read_source"]

"""From matches to a score card's numbers: the ledger, decay, caps and the band.

:mod:`.ledger` turns a lead's matches into ledger lines, :mod:`.decay` holds the arithmetic that
fades them, :mod:`.caps` adds the lines of the caps that bite, and :mod:`.bands` places the total
in a band behind its gates. Points are whole numbers and ``sum(ledger) == total`` always holds.
"""

from leadscore.scoring.bands import choose_band, share_thresholds
from leadscore.scoring.decay import decayed, factor_at
from leadscore.scoring.ledger import build_ledger

__all__ = ["build_ledger", "choose_band", "decayed", "factor_at", "share_thresholds"]

"""Reading leads from files and streams, and writing score cards and rejections back out."""

from leadscore.io.readers import lead_from_dict, read_leads
from leadscore.io.timestamps import format_timestamp, parse_timestamp
from leadscore.io.writers import RejectionWriter, card_to_dict, lead_to_dict, open_writer, rejection_to_dict

__all__ = [
    "RejectionWriter",
    "card_to_dict",
    "format_timestamp",
    "lead_from_dict",
    "lead_to_dict",
    "open_writer",
    "parse_timestamp",
    "read_leads",
    "rejection_to_dict",
]

"""Booking dialogs: book, list, see, move and cancel appointments; deliver the calendar file.

One dialog a module, on the card-flow base (`dialogs/card_flow.py`, `flow.py` for what the booking
dialogs share); `feature.py` holds the feature's conversation map, `build_booking_feature`. The rules
live in the booking service and the domain.
"""

from dialogs.booking.feature import build_booking_feature

__all__ = ["build_booking_feature"]

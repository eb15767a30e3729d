"""Booking dialogs: book, list, see, move and cancel appointments; deliver the calendar file.

One dialog a module (`book`, `reschedule`, `cancel`, `my_appointments`, `details`, `calendar_file`),
on the card-flow base (`dialogs/card_flow.py`); `flow.py` holds what the booking dialogs share,
`time_choice.py` the day and time steps of booking and moving, `state.py` what each flow remembers
between turns, and `feature.py` the feature's conversation map, `build_booking_feature`. The rules
live in the booking service and the domain.
"""

from dialogs.booking.feature import build_booking_feature

__all__ = ["build_booking_feature"]

"""The booking feature's conversation map: its dialogs, and the commands and buttons that start them."""

from __future__ import annotations

from bot.commands import Intent
from bot.services.booking import BookingService
from bot.services.container import Services
from cards.verbs import Verb
from dialogs.booking.book import BookDialog
from dialogs.booking.calendar_file import CalendarFileDialog
from dialogs.booking.cancel import CancelDialog
from dialogs.booking.details import AppointmentDetailsDialog
from dialogs.booking.my_appointments import MyAppointmentsDialog
from dialogs.booking.reschedule import RescheduleDialog
from dialogs.main_dialog import Entry, Feature


def build_booking_feature(services: Services, booking: BookingService) -> Feature:
    book = Entry(BookDialog.ID, needs_consent=True)
    listing = Entry(MyAppointmentsDialog.ID, needs_proof=True)
    reschedule = Entry(RescheduleDialog.ID, needs_consent=True)
    cancel = Entry(CancelDialog.ID)
    # Typed, these choose among all of the citizen's appointments; the buttons name one, which the dialogs
    # check is the citizen's own (on the web: one booked in this very conversation).
    reschedule_any = Entry(RescheduleDialog.ID, needs_consent=True, needs_proof=True)
    cancel_any = Entry(CancelDialog.ID, needs_proof=True)
    return Feature(
        dialogs=[
            BookDialog(services, booking),
            RescheduleDialog(services, booking),
            CancelDialog(services, booking),
            MyAppointmentsDialog(services, booking),
            AppointmentDetailsDialog(services, booking),
            CalendarFileDialog(services, booking),
        ],
        intents={
            Intent.BOOK: book,
            Intent.MY_APPOINTMENTS: listing,
            Intent.RESCHEDULE: reschedule_any,
            Intent.CANCEL_APPOINTMENT: cancel_any,
        },
        verbs={
            Verb.MENU_BOOK: book,
            Verb.MENU_MY_APPOINTMENTS: listing,
            Verb.APPT_DETAILS: Entry(AppointmentDetailsDialog.ID),
            Verb.APPT_RESCHEDULE: reschedule,
            Verb.APPT_CANCEL: cancel,
            Verb.APPT_CALENDAR_FILE: Entry(CalendarFileDialog.ID),
        },
    )

"""Adapters to services outside Teams' chat: the OneDrive upload sessions Teams opens for files, and
(next) Microsoft Graph for Teams meetings. Each implements a port of bot.services.ports or is called
by the edge; none holds a rule."""

"""Adapters to services outside Teams' chat: the OneDrive upload sessions Teams opens for files, and
Microsoft Graph (graph_client: the client; graph: Teams meetings; graph_availability: Outlook busy
times; graph_install: installing the bot for counselors; graph_errors: what a failure means). Each
implements a port of bot.services.ports or is called by the edge; none holds a rule."""

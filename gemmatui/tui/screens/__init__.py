"""The app's screens: ``models`` (fit and choice), ``pull``, ``help`` and shared dialogs.

The chat screen lives in :mod:`gemmatui.tui.screens.chat`.
"""

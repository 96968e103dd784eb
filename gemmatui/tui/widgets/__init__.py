"""Small, reusable widgets of the terminal app: conversation blocks, the prompt, the live
panels (VRAM, plan against reality, tokens), the conversation sidebar and dialogs.

Import from the modules themselves (``gemmatui.tui.widgets.vram_panel``); this package
imports nothing, so loading one widget does not load them all.
"""

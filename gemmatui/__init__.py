"""gemmatui: run Gemma 3 QAT models well on the hardware you own."""

__version__ = "0.1.0"

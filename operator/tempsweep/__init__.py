"""tempsweep: keeps temporary storage from overflowing.

The package is layered, and imports point one way (checked by import-linter):
``models`` <- ``engine`` <- ``storage`` / ``jobs`` <- ``controller`` / ``cli``.
"""

__version__ = "0.1.0"

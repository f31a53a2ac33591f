"""Message catalogs, one module per language; English is the reference and the fallback."""

"""The web layer: assembles the contexts' routers into one FastAPI app. No rules live here."""

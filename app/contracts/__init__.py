"""Typed event contracts, one file per publishing module: the only thing modules share."""

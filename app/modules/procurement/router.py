"""REST routes of the procurement module."""

from fastapi import APIRouter

router = APIRouter(tags=["procurement"])

"""REST routes of the leasing module."""

from fastapi import APIRouter

router = APIRouter(tags=["leasing"])

"""REST routes of the hr module."""

from fastapi import APIRouter

router = APIRouter(tags=["hr"])

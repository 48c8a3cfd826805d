"""REST routes of the notification module."""

from fastapi import APIRouter

router = APIRouter(tags=["notification"])

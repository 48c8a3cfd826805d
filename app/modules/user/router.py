"""REST routes of the user module."""

from fastapi import APIRouter

router = APIRouter(tags=["user"])

"""REST routes of the auth module."""

from fastapi import APIRouter

router = APIRouter(tags=["auth"])

"""All staff routes under one router (mounted at /staff)."""

from fastapi import APIRouter

router = APIRouter(tags=["staff"])

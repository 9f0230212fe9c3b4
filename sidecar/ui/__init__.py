"""The live page (``GET /ui`` on every listener): agents and their profiles with state, expiry,
cooldowns and windows; requests and tokens per agent over the last day; recent refreshes and
failures; one action, clearing a profile's cooldown. Dependency-free HTML, CSS and JS served
from the package (the page works offline); no secret in the page or the API behind it."""

"""Whether a new password is strong enough: zxcvbn's estimate, with the user's own email and
name as words an attacker would try first. The length floor is the contract's (PASSWORD_MIN);
both judge the password's NFKC form, the one that is hashed (`normalise_password`)."""

from __future__ import annotations

import asyncio
import re

from zxcvbn import zxcvbn

from libs.contracts.people import normalise_password
from libs.events.errors import ServiceError

MIN_SCORE = 3
"""zxcvbn's 0-4 scale; 3 is "safely unguessable: moderate protection from offline attacks"."""
CHECKED_LENGTH = 72
"""zxcvbn refuses longer input (its matching grows fast with length); a password whose first 72
characters are strong is strong, and every character after them only adds to it."""


def _context(email: str, name: str) -> list[str]:
    """The words of the user's own identity, which zxcvbn then treats as known."""
    local, _, domain = email.partition("@")
    name = normalise_password(name)  # in the password's form, so zxcvbn finds it there
    parts = re.split(r"[\W_]+", f"{local} {name}")
    joined = ["".join(re.split(r"[\W_]+", local)), "".join(re.split(r"[\W_]+", name))]
    words = [email, local, domain, name, *parts, *joined, *re.split(r"[\W_]+", domain)]
    return [w for w in dict.fromkeys(words) if len(w) >= 3]


def weakness(password: str, *, email: str, name: str) -> str | None:
    """Why this password is refused, in words for its owner; None when it is strong enough."""
    checked = normalise_password(password)[:CHECKED_LENGTH]
    result = zxcvbn(checked, user_inputs=_context(email, name))
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    said = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    advice = " ".join(s for s in said if s) or "Add another word or two. Uncommon words are better."
    return f"this password is too easy to guess. {advice}"


async def check_strength(password: str, *, email: str, name: str) -> None:
    """Raise 422 WEAK_PASSWORD (details name the field and say why) for a guessable password.
    In a thread: an estimate takes up to ~60 ms of CPU, too long to hold the event loop."""
    why = await asyncio.to_thread(weakness, password, email=email, name=name)
    if why is not None:
        raise ServiceError(422, "WEAK_PASSWORD", why, {"password": why})

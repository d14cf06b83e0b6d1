"""Who the user is in an agentic conversation (``base.User``): where the user's next
message comes from once the model has answered; ``scripted``: a scenario's
``user_turns``, in order."""

from tooltrial.users.base import User, user_for
from tooltrial.users.scripted import ScriptedUser

__all__ = ["ScriptedUser", "User", "user_for"]

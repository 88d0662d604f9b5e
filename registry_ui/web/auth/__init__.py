"""Sign-in and roles: who the user is (signin.py) and which role groups exist (roles.py).

The authentication backend is re-exported here because its dotted path,
registry_ui.web.auth.ThrottledModelBackend, is stored in every session: moving it would sign
every user out.
"""

from registry_ui.web.auth.signin import ThrottledModelBackend

__all__ = ["ThrottledModelBackend"]

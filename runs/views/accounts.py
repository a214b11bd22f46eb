"""Log-in throttling's answer (django-axes calls it: ``AXES_LOCKOUT_CALLABLE``).

After ``AXES_FAILURE_LIMIT`` failed log-ins for one username from one address, that pair is
locked out for ``AXES_COOLOFF_TIME``: the log-in page comes back with status 429 and says
so, and when it ends. Other users, and the same user from elsewhere, are not affected.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

TOO_MANY = 429


def lockout_message(username: str) -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    who = f"“{username}”" if username else "this username"
    return (f"Too many failed log-ins for {who} from your address: log-in is locked for "
            f"{minutes} minutes. Try again later, or ask an admin to unlock it "
            "(admin → Access attempts).")


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None,
               credentials: dict | None = None) -> HttpResponse:
    """The log-in page again, unbound (the password is not kept), with the lockout said."""
    username = str((credentials or {}).get("username") or request.POST.get("username") or "")
    form = AuthenticationForm(request, initial={"username": username[:150]})
    return render(request, "registration/login.html",
                  {"form": form, "lockout_message": lockout_message(username[:150]),
                   "next": request.POST.get("next") or request.GET.get("next", "")},
                  status=TOO_MANY)

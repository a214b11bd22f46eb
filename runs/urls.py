from django.urls import path
from django.views.generic import RedirectView

from .views import pages as views

urlpatterns = [
    path("", RedirectView.as_view(url="/inbox/", permanent=False)),
    path("inbox/", views.inbox, name="inbox"),
    path("escalations/<int:escalation_id>/", views.escalation_detail, name="escalation_detail"),
    path("escalations/<int:escalation_id>/decide/", views.escalation_decide,
         name="escalation_decide"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("healthz", views.healthz, name="healthz"),
]

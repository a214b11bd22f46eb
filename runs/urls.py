from django.urls import path
from django.views.generic import RedirectView

from .views import (
    assignment,
    audit,
    calibration,
    dashboard,
    escalations,
    inbox,
    pages,
    reviews,
    runs,
)

urlpatterns = [
    path("", RedirectView.as_view(url="/inbox/", permanent=False)),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/bulk/", inbox.inbox_bulk, name="inbox_bulk"),
    path("escalations/<int:escalation_id>/", escalations.escalation_detail,
         name="escalation_detail"),
    path("escalations/<int:escalation_id>/decide/", escalations.escalation_decide,
         name="escalation_decide"),
    path("escalations/<int:escalation_id>/claim/", escalations.escalation_claim,
         name="escalation_claim"),
    path("escalations/<int:escalation_id>/release/", escalations.escalation_release,
         name="escalation_release"),
    path("escalations/<int:escalation_id>/assign/", assignment.escalation_assign,
         name="escalation_assign"),
    path("runs/", runs.run_list, name="run_list"),
    path("runs/new/", pages.run_new, name="run_new"),
    path("runs/<int:run_id>/", runs.run_detail, name="run_detail"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="run_cancel"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("audit/", audit.audit_log, name="audit"),
    path("calibration/", calibration.calibration_page, name="calibration"),
    path("calibration/apply/", calibration.apply_threshold, name="apply_threshold"),
    path("review/", reviews.review_queue, name="review_queue"),
    path("review/<int:item_id>/", reviews.review_decide, name="review_decide"),
    path("healthz", pages.healthz, name="healthz"),
]

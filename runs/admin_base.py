"""What every admin page shares: each team admin sees only their teams' rows, edits are
audited, history is read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import Q
from django.http import Http404

from . import audit, permissions


def _narrowed(queryset, request):
    """A choice list limited to the user's administered teams, for models of a team."""
    if queryset is None or permissions.team_path(queryset.model) is None:
        return queryset
    return permissions.scoped(queryset, request.user)


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a relation offers only the administered teams' rows (a team admin
    of one team never reads another team's name, agent or policy in a sidebar)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        related = field.related_model
        if permissions.team_path(related) is None:
            return field.get_choices(include_blank=False, ordering=ordering)
        allowed = permissions.scoped(related._default_manager.all(), request.user)
        return field.get_choices(include_blank=False, ordering=ordering,
                                 limit_choices_to=Q(pk__in=allowed.values("pk")))


class TeamScopedAdmin(admin.ModelAdmin):
    """THE tenancy of Django admin (``runs.permissions`` decides): a team admin who is staff
    but not superuser sees the rows of the teams they administer, nothing else —

    - the lists (``get_queryset``, so changelists, actions and object lookups), and the
      choices of their relation filters;
    - foreign-key and many-to-many choices (team, policy, agent, MCP servers, HTTP tools…);
    - object URLs: change, delete and history of another team's row are a 404, as for a row
      that does not exist.

    Which pages they may open at all is their model permissions
    (``permissions.TeamAdminBackend``). A superuser sees everything."""

    def get_queryset(self, request):
        return permissions.scoped(super().get_queryset(request), request.user)

    def get_object(self, request, object_id, from_field=None):
        found = super().get_object(request, object_id, from_field)
        if found is None:  # absent, or another team's: the same 404 (no redirect that tells)
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r} here.")
        return found

    def get_list_filter(self, request):
        return [self._scoped_filter(entry) for entry in super().get_list_filter(request)]

    def _scoped_filter(self, entry):
        if not isinstance(entry, str):
            return entry
        field = self.model._meta.get_field(entry.split("__")[0])
        for part in entry.split("__")[1:]:
            field = field.related_model._meta.get_field(part)
        return (entry, ScopedRelatedFilter) if field.is_relation else entry

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None:
            formfield.queryset = _narrowed(formfield.queryset, request)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if formfield is not None:
            formfield.queryset = _narrowed(formfield.queryset, request)
        return formfield


class AuditedAdmin(TeamScopedAdmin):
    """Every add, change and delete made here, inlines included, goes to the audit log of
    the teams it concerns, with the fields before and after (``audit.record_change``), in
    the admin's own transaction.

    Admin hooks rather than model signals: they know who made the change, and they see
    only what a person changed in admin — not the writes of services and seeding (which
    record their own events where they matter, e.g. API keys created and revoked)."""

    def save_model(self, request, obj, form, change) -> None:
        old = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        audit.record_change(
            obj=obj, verb="changed" if old else "created", actor=request.user,
            before=audit.field_values(old) if old else {}, after=audit.field_values(obj),
            team_ids=audit.teams_of(old) if old else set(),  # moved: the old team sees it too
        )

    def delete_model(self, request, obj) -> None:
        pk, before, teams = obj.pk, audit.field_values(obj), audit.teams_of(obj)
        super().delete_model(request, obj)
        audit.record_change(obj=obj, verb="deleted", actor=request.user, before=before,
                            after={}, target_id=pk, team_ids=teams)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            doomed = [(obj, obj.pk, audit.field_values(obj), audit.teams_of(obj))
                      for obj in queryset]
            super().delete_queryset(request, queryset)
            for obj, pk, before, teams in doomed:
                audit.record_change(obj=obj, verb="deleted", actor=request.user,
                                    before=before, after={}, target_id=pk, team_ids=teams)

    def save_formset(self, request, form, formset, change) -> None:
        pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk]
        old = {o.pk: o for o in formset.model._default_manager.filter(pk__in=pks)}
        doomed = [(f.instance, f.instance.pk) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record_change(obj=obj, verb="created", actor=request.user, before={},
                                after=audit.field_values(obj))
        for obj, _fields in formset.changed_objects:
            audit.record_change(obj=obj, verb="changed", actor=request.user,
                                before=audit.field_values(old[obj.pk]),
                                after=audit.field_values(obj), team_ids=audit.teams_of(old[obj.pk]))
        for obj, pk in doomed:
            audit.record_change(obj=obj, verb="deleted", actor=request.user,
                                before=audit.field_values(old.get(pk, obj)), after={},
                                target_id=pk)



class ReadOnlyAdmin(TeamScopedAdmin):
    """History is evidence: it can be browsed, never edited or deleted from admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

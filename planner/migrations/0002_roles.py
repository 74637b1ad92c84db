"""The three roles as groups with permissions: viewer, release manager, on-call engineer."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = ["view_targetdatabase", "view_plan", "view_phase", "view_auditevent"]
ROLES = {
    "viewer": VIEW,
    "release manager": VIEW
    + [
        "add_plan",
        "change_plan",
        "add_phase",
        "change_phase",
        "delete_phase",
        "schedule_plan",
        "approve_plan",
        "start_plan",
    ],
    "on-call engineer": VIEW + ["pause_run", "resume_run", "cancel_run", "rollback_run"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = list(Permission.objects.filter(content_type__app_label="planner", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.set(permissions)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("planner", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]

from tests.factories import admin, employee, org

__all__ = ["admin", "employee", "org"]
